// The filter pickers (users, keys, models, providers, teams, one tag) and the chips of the active filters.
// Keys cascade from the chosen users and teams: with users chosen, only their keys are offered; with teams
// chosen, `filterOptions` itself lists only the keys used in them. Tags are asked for only when their picker
// opens (the gateway reads LiteLLM's tag activity for them).
"use strict";
UG.filters = (function () {
  var LIMIT = 200; // options drawn at once; the search box narrows longer lists
  var KINDS = [
    { name: "users", label: "Users", admin: true },
    { name: "keys", label: "Keys" },
    { name: "models", label: "Models" },
    { name: "providers", label: "Providers" },
    { name: "teams", label: "Teams" },
    { name: "tag", label: "Tag", single: true },
  ];

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function userLabel(user) {
    return user.username || user.email || user.id;
  }

  function keyLabel(key) {
    return key.keyAlias || key.name || key.id;
  }

  // [{value, label, hint}] for each kind, from `filterOptions`.
  function teamLabel(team) {
    if (team.id === "no-team") return "No team";
    return team.alias || team.id;
  }

  function selectedOf(kind, view) {
    if (kind.single) return view[kind.name] ? [view[kind.name]] : [];
    return view[kind.name];
  }

  function choices(options, view, tags) {
    var tagChoices = (tags || []).map(function (tag) { return { value: tag, label: tag, hint: "" }; });
    if (!options) return { users: [], keys: [], models: [], providers: [], teams: [], tag: tagChoices };
    var chosenUsers = view.users;
    var keys = options.apiKeys.filter(function (key) {
      return chosenUsers.length === 0 || (key.user && chosenUsers.indexOf(key.user.id) >= 0);
    });
    return {
      users: (options.users || []).map(function (user) {
        return { value: user.id, label: userLabel(user), hint: user.email && user.username ? user.email : "" };
      }).sort(byLabel),
      keys: keys.map(function (key) {
        return { value: key.id, label: keyLabel(key), hint: key.user ? key.user.id : "" };
      }).sort(byLabel),
      models: options.models.map(function (model) { return { value: model, label: model, hint: "" }; }),
      providers: options.providers.map(function (provider) { return { value: provider, label: provider, hint: "" }; }),
      teams: (options.teams || []).map(function (team) {
        return { value: team.id, label: teamLabel(team), hint: team.deleted ? "deleted in LiteLLM" : "" };
      }).sort(byLabel),
      tag: tagChoices,
    };
  }

  function byLabel(a, b) {
    return a.label.localeCompare(b.label);
  }

  function labelOf(kindChoices, value) {
    for (var i = 0; i < kindChoices.length; i += 1) {
      if (kindChoices[i].value === value) return kindChoices[i].label;
    }
    return value;
  }

  function picker(kind, list, selected, loading, query, onOpen, onChange) {
    var details = element("details", { class: "picker", "data-filter": kind.name });
    var count = selected.length ? " (" + selected.length + ")" : "";
    var summary = element("summary", {}, kind.label + count);
    if (selected.length) summary.classList.add("active");
    details.appendChild(summary);
    var box = element("div", { class: "picker-box" });
    var searchId = "filter-search-" + kind.name;
    var searchLabel = element("label", { for: searchId, class: "sr" }, "Search " + kind.label.toLowerCase());
    var search = element("input", { type: "search", id: searchId, placeholder: "Search " + kind.label.toLowerCase() + "…", autocomplete: "off" });
    var listBox = element("fieldset", { class: "picker-list" });
    listBox.appendChild(element("legend", { class: "sr" }, kind.single ? kind.label + " (one at a time)" : kind.label));
    var more = element("p", { class: "muted small" });
    box.appendChild(searchLabel);
    box.appendChild(search);
    box.appendChild(listBox);
    box.appendChild(more);
    var clear = element("button", { type: "button", class: "quiet small" }, "Clear");
    clear.disabled = selected.length === 0;
    clear.addEventListener("click", function () { onChange(kind.name, kind.single ? "" : []); });
    box.appendChild(clear);
    details.appendChild(box);

    function draw() {
      var needle = search.value.trim().toLowerCase();
      listBox.querySelectorAll("label").forEach(function (node) { node.remove(); });
      var matching = list.filter(function (item) {
        return !needle || (item.label + " " + item.value + " " + item.hint).toLowerCase().indexOf(needle) >= 0;
      });
      matching.slice(0, LIMIT).forEach(function (item) {
        var label = element("label", { class: "option" });
        var box = element("input", kind.single
          ? { type: "radio", name: "filter-" + kind.name, value: item.value }
          : { type: "checkbox", value: item.value });
        box.checked = selected.indexOf(item.value) >= 0;
        box.addEventListener("change", function () {
          if (kind.single) { onChange(kind.name, box.checked ? item.value : ""); return; }
          var next = selected.filter(function (value) { return value !== item.value; });
          if (box.checked) next.push(item.value);
          onChange(kind.name, next);
        });
        label.appendChild(box);
        label.appendChild(element("span", {}, item.label));
        if (item.hint && item.hint !== item.label) label.appendChild(element("span", { class: "hint" }, item.hint));
        listBox.appendChild(label);
      });
      more.textContent = loading ? "Loading the choices…" : matching.length > LIMIT ? (matching.length - LIMIT) + " more: narrow with the search box" : matching.length === 0 ? "Nothing in this range." : "";
    }
    search.value = query;
    search.addEventListener("input", draw);
    draw();
    details.addEventListener("toggle", function () {
      if (!details.open) return;
      if (loading) onOpen();
      // One picker open at a time.
      document.querySelectorAll("details.picker[open]").forEach(function (other) {
        if (other !== details) other.open = false;
      });
      search.focus();
    });
    details.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { details.open = false; summary.focus(); }
    });
    return details;
  }

  // Draws the pickers into `container` and the chips into `chips`; `onOpen(kind)` when a picker opens before
  // its choices are known (`options` null, or `tags` null for the tag picker); `onChange(kind, values)`
  // (for the tag, one value or "").
  function draw(container, chips, options, tags, view, everyone, onOpen, onChange) {
    var lists = choices(options, view, tags);
    var open = container.querySelector("details[open]");
    var openName = open ? open.getAttribute("data-filter") : null;
    var active = document.activeElement;
    var query = open ? open.querySelector('input[type="search"]').value : "";
    var focusedValue = active && active.type === "checkbox" && open && open.contains(active) ? active.value : null;
    container.textContent = "";
    KINDS.forEach(function (kind) {
      if (kind.admin && !everyone) return;
      var loading = kind.single ? tags === null : options === null;
      var node = picker(
        kind, lists[kind.name], selectedOf(kind, view), loading, kind.name === openName ? query : "",
        function () { onOpen(kind.name); }, onChange
      );
      container.appendChild(node);
      if (kind.name === openName) {
        node.open = true;
        // Keep the keyboard where it was: on the same choice, else in the search box.
        var again = focusedValue === null ? null : node.querySelector('input[value="' + CSS.escape(focusedValue) + '"]');
        var search = node.querySelector('input[type="search"]');
        if (again) again.focus();
        else if (document.activeElement === document.body && search) search.focus();
      }
    });
    chips.textContent = "";
    var any = false;
    KINDS.forEach(function (kind) {
      if (kind.admin && !everyone) return;
      selectedOf(kind, view).forEach(function (value) {
        any = true;
        var label = labelOf(lists[kind.name], value);
        var noun = kind.label.replace(/s$/, "");
        // The name comes from the content, so it holds the visible text ("Team Engineering") whole.
        var chip = element("button", { type: "button", class: "chip" });
        chip.appendChild(element("span", { class: "sr" }, "Remove filter "));
        chip.appendChild(element("span", { class: "chip-kind" }, noun));
        chip.appendChild(document.createTextNode(" "));
        chip.appendChild(element("span", {}, label));
        chip.appendChild(element("span", { class: "chip-x", "aria-hidden": "true" }, "×"));
        chip.addEventListener("click", function () {
          if (kind.single) { onChange(kind.name, ""); return; }
          onChange(kind.name, view[kind.name].filter(function (other) { return other !== value; }));
        });
        chips.appendChild(chip);
      });
    });
    if (any) {
      var reset = element("button", { type: "button", class: "quiet small" }, "Clear all filters");
      reset.addEventListener("click", function () { onChange(null, []); });
      chips.appendChild(reset);
    }
    chips.hidden = !any;
  }

  // A click outside an open picker closes it, as a menu would.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.picker[open]").forEach(function (open) {
      if (!open.contains(event.target)) open.open = false;
    });
  });

  return { draw: draw, userLabel: userLabel, keyLabel: keyLabel, teamLabel: teamLabel };
})();
