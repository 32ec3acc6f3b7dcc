"""Maximum tokens: the parser stops reading a document past ``limit`` tokens (or comments), so a huge
document costs no more than a large one; the error it raises is answered as ``QUERY_TOO_COMPLEX``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from graphql import GraphQLError, GraphQLSyntaxError, Source
from graphql.language import Lexer, TokenKind
from strawberry.extensions import SchemaExtension

from usage_gateway.errors import QueryTooComplex


def exceeds(query: str, limit: int) -> bool:
    """Whether ``query`` has more than ``limit`` tokens or comments (reading at most ``limit + 1``)."""
    if query.count("#") > limit:
        return True
    lexer, count = Lexer(Source(query)), 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            count += 1
            if count > limit:
                return True
    except GraphQLError:
        pass  # a real syntax error before the limit
    return False


class MaxTokens(SchemaExtension):
    """``QUERY_TOO_COMPLEX`` for a document of more than ``limit`` tokens."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_operation(self) -> Iterator[None]:
        # Strawberry types parse_options with the deprecated `max_tokens` only; graphql-core takes these.
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options["max_lexical_tokens"] = options["max_comments"] = self.limit
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        context = self.execution_context
        for error in context.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and exceeds(context.query or "", self.limit):
                # The parser's own error object is what the response carries: restate it in place.
                error.message = (
                    f"the query has more than {self.limit} tokens; at most {self.limit} are allowed"
                )
                error.original_error = QueryTooComplex(error.message)
