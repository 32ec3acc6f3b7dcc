"""What the demo data is made of: the models with their providers and prices, the departments, the
names of people and the purposes of their keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    providers: tuple[str, ...]  # the first is the deployment most traffic goes to
    input_price: float  # USD per million tokens
    output_price: float
    cache_read_price: float | None  # None: the provider offers no prompt caching
    kind: str  # chat | reasoning | code | embedding
    latency_ms: int
    popularity: float


MODELS: tuple[Model, ...] = (
    Model("gpt-4o", ("openai", "azure"), 2.5, 10.0, 1.25, "chat", 2400, 10),
    Model("gpt-4o-mini", ("openai", "azure"), 0.15, 0.6, 0.075, "chat", 900, 14),
    Model("gpt-4.1", ("azure", "openai"), 2.0, 8.0, 0.5, "chat", 2100, 6),
    Model("gpt-4.1-mini", ("openai",), 0.4, 1.6, 0.1, "chat", 1000, 7),
    Model("gpt-4.1-nano", ("openai",), 0.1, 0.4, 0.025, "chat", 600, 3),
    Model("o3-mini", ("openai",), 1.1, 4.4, 0.55, "reasoning", 9000, 3),
    Model("o1", ("openai",), 15.0, 60.0, 7.5, "reasoning", 21000, 0.6),
    Model("text-embedding-3-small", ("openai",), 0.02, 0.0, None, "embedding", 140, 5),
    Model("text-embedding-3-large", ("openai", "azure"), 0.13, 0.0, None, "embedding", 190, 2),
    Model("claude-sonnet-4-20250514", ("anthropic", "bedrock"), 3.0, 15.0, 0.3, "chat", 3100, 9),
    Model("claude-3-7-sonnet-20250219", ("anthropic", "bedrock"), 3.0, 15.0, 0.3, "chat", 3300, 4),
    Model("claude-3-5-haiku-20241022", ("anthropic", "bedrock"), 0.8, 4.0, 0.08, "chat", 1300, 4),
    Model("claude-opus-4-20250514", ("anthropic",), 15.0, 75.0, 1.5, "chat", 5200, 1),
    Model("amazon.nova-pro-v1:0", ("bedrock",), 0.8, 3.2, None, "chat", 1900, 1),
    Model("amazon.nova-lite-v1:0", ("bedrock",), 0.06, 0.24, None, "chat", 800, 1),
    Model("meta.llama3-1-70b-instruct-v1:0", ("bedrock",), 0.72, 0.72, None, "chat", 1700, 1.5),
    Model("cohere.embed-english-v3", ("bedrock",), 0.1, 0.0, None, "embedding", 170, 1),
    Model("gemini-2.0-flash", ("vertex_ai",), 0.1, 0.4, 0.025, "chat", 800, 4),
    Model("gemini-2.5-flash", ("vertex_ai",), 0.3, 2.5, 0.075, "chat", 1500, 3),
    Model("gemini-2.5-pro", ("vertex_ai",), 1.25, 10.0, 0.31, "reasoning", 8000, 2),
    Model("text-embedding-005", ("vertex_ai",), 0.025, 0.0, None, "embedding", 160, 1),
    Model("mistral-large-latest", ("mistral",), 2.0, 6.0, None, "chat", 2200, 2),
    Model("mistral-small-latest", ("mistral",), 0.2, 0.6, None, "chat", 900, 2),
    Model("codestral-latest", ("mistral",), 0.3, 0.9, None, "code", 700, 2.5),
    Model("mistral-embed", ("mistral",), 0.1, 0.0, None, "embedding", 150, 0.5),
)
BY_NAME = {model.name: model for model in MODELS}
# LiteLLM's model groups (the public names clients ask for) where they differ from the model: several
# Claude versions behind one name, dated and "-latest" models behind a plain one.
MODEL_GROUPS = {
    "claude-sonnet-4-20250514": "claude-sonnet",
    "claude-3-7-sonnet-20250219": "claude-sonnet",
    "claude-3-5-haiku-20241022": "claude-haiku",
    "claude-opus-4-20250514": "claude-opus",
    "mistral-large-latest": "mistral-large",
    "mistral-small-latest": "mistral-small",
    "codestral-latest": "codestral",
    "meta.llama3-1-70b-instruct-v1:0": "llama-3.1-70b",
}
PREMIUM = ("claude-sonnet-4-20250514", "gpt-4o", "gpt-4.1", "gemini-2.5-pro", "o3-mini")
# Median prompt and completion tokens per successful request.
TOKENS = {"chat": (1400, 380), "reasoning": (1800, 1200), "code": (3200, 160), "embedding": (420, 0)}
# (department, share of staff, how much an average member uses LLMs)
DEPARTMENTS = (
    ("Engineering", 0.34, 1.3),
    ("Data Science", 0.14, 1.7),
    ("Research", 0.08, 2.0),
    ("Product", 0.10, 0.7),
    ("Customer Support", 0.10, 0.9),
    ("Sales", 0.07, 0.5),
    ("Marketing", 0.06, 0.6),
    ("Finance", 0.04, 0.4),
    ("Legal", 0.03, 0.4),
    ("Operations", 0.04, 0.6),
)
# Space-separated, split when used (a literal list would take a hundred lines).
FIRST_NAMES = (
    "Ava Ben Chloe Dan Elena Felix Grace Hugo Iris Jonas Kira Liam Maya Noah Olivia Pablo Quinn Rosa "
    "Sam Tara Umar Vera Will Xena Yusuf Zoe Aria Bruno Cleo Diego Emma Finn Gia Hana Ivan Jade Kai "
    "Lena Marco Nina Omar Priya Ravi Sofia Theo Uma Victor Wen Yara Zack"
)
LAST_NAMES = (
    "Chen Patel Garcia Kim Müller Novak Rossi Silva Tanaka Olsen Dubois Kowalski Ivanova Haddad "
    "Okafor Nguyen Larsen Moreau Costa Fischer Sato Brown Wilson Khan Lopez Meyer Jensen Petrov "
    "Rahman Schmidt Walsh Cohen Yilmaz Andersen Bauer Romano Santos Weber Park Ali Evans Hughes "
    "Mendes Varga Berg Ortiz Sharma Lindqvist Adeyemi Horvat"
)
PURPOSES = ("laptop", "notebook", "ci", "prod", "staging", "eval", "agent", "chatbot", "batch", "cli", "dev")
