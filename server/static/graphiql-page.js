// The gateway's GraphiQL page: the editors start from the URL's `q` and `variables` (and keep them there,
// so a query can be shared as a link); the header editor starts from what GraphiQL stored in this
// browser, or from the page's start-up block (the demo's one-time link). Tokens never go in the URL.
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  if (config.location) {
    history.replaceState(null, "", config.location);
  }
  var parameters = new URLSearchParams(window.location.search);

  var WELCOME = [
    "# usage-gateway's GraphiQL.",
    "#",
    "# Every request needs a token: open the Headers tab below and paste",
    '#   {"Authorization": "Bearer <token>"}',
    "# GraphiQL keeps it in this browser. The Docs and Explorer panes (left) list every field.",
    "# Run with Ctrl-Enter or the play button.",
    "",
    "query Viewer {",
    "  viewer {",
    "    id",
    "    roles",
    "  }",
    "}",
    "",
  ].join("\n");

  function remember(key, value) {
    if (value) {
      parameters.set(key, value);
    } else {
      parameters.delete(key);
    }
    var search = parameters.toString();
    history.replaceState(null, "", window.location.pathname + (search ? "?" + search : ""));
  }

  // GraphiQL matches its stored tabs on query, variables and headers: starting from the header it keeps
  // (`graphiql:headers`) finds the tab of the last visit instead of opening one without the token.
  function storedHeaders() {
    try {
      return window.localStorage.getItem("graphiql:headers") || undefined;
    } catch (error) {
      return undefined;
    }
  }

  var headers = config.headers || storedHeaders();
  var fetcher = GraphiQL.createFetcher({ url: config.endpoint });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function Page() {
    var query = React.useState(parameters.get("q") || WELCOME);
    var variables = React.useState(parameters.get("variables") || undefined);
    var props = {
      fetcher: fetcher,
      plugins: [explorer],
      query: query[0],
      variables: variables[0],
      headers: headers,
      defaultEditorToolsVisibility: config.headers ? "headers" : true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
      onEditQuery: function (value) {
        query[1](value);
        remember("q", value === WELCOME ? "" : value);
      },
      onEditVariables: function (value) {
        variables[1](value);
        remember("variables", value);
      },
    };
    return React.createElement(GraphiQL, props);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(Page));
})();
