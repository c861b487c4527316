"""The OpenAPI document tells the truth about errors, authentication and unknown fields, from one place.

- Every operation documents its error answers as ``application/problem+json`` (:class:`Problem`): 400
  always (the edge refuses bad parameters and control characters on every route), 503 unless the
  handler says ``opt={"storage": False}`` (the database or the store may not answer), 401/403 where it
  is guarded, 404 where the path names something, 409/413/422 where it changes state, 422 where it
  takes parameters, and whatever a handler adds in ``opt={"problems": [status, ...]}`` (or a mapping
  of status to description);
  ``default`` covers any other error, problem+json too. A route that speaks another protocol says so with
  ``opt={"own_format": "..."}``: its answers are then documented as that protocol's, any media type.
- Security requirements come from the guards: a guard says which scheme it checks with
  :func:`requires`; alternatives (a bearer token *or* HTTP Basic) are listed as such, guards stacked on
  one route are all required.
- Structs that refuse unknown fields (``forbid_unknown_fields=True``) say so: ``additionalProperties:
  false``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import product
from typing import Any, TypeVar, cast

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, Schema, SecurityRequirement, SecurityScheme
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from backend.errors import PROBLEM_MEDIA_TYPE, Problem

G = TypeVar("G", bound=Callable[..., Any])
SECURITY_ATTR = "openapi_security"

SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    "citizenToken": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="A citizen's access token (POST /api/v1/auth/login, /api/v1/auth/refresh).",
    ),
    "machineCredential": SecurityScheme(
        type="http",
        scheme="basic",
        description=(
            "A machine credential's client id and secret (RFC 6749 section 2.3.1): a scanner, a mini-app's "
            "backend, a merchant or an operator, made with the `shengshi` command."
        ),
    ),
    "miniappToken": SecurityScheme(
        type="http",
        scheme="bearer",
        description="A mini-app's access token for one citizen (POST /api/v1/miniapps/{app_id}/token).",
    ),
    "consoleSession": SecurityScheme(
        type="apiKey",
        name="id",
        security_scheme_in="cookie",
        description="An operator signed in to the console at /admin/.",
    ),
    "consoleCsrf": SecurityScheme(
        type="apiKey",
        name="X-CSRFToken",
        security_scheme_in="header",
        description="The console's csrftoken cookie, repeated in this header.",
    ),
}


def requires(*alternatives: Mapping[str, list[str]]) -> Callable[[G], G]:
    """Declare on a guard the security it checks: ``@requires({"citizenToken": []})``; several arguments
    are alternatives (either will do)."""

    def mark(guard: G) -> G:
        setattr(guard, SECURITY_ATTR, [dict(a) for a in alternatives])
        return guard

    return mark


def security_of(guards: Iterable[Any]) -> list[SecurityRequirement]:
    """Stacked guards are all required (one requirement object each combination); a guard's own
    alternatives stay alternatives."""
    declared = [getattr(g, SECURITY_ATTR) for g in guards if getattr(g, SECURITY_ATTR, None)]
    if not declared:
        return []
    combined: list[SecurityRequirement] = []
    for choice in product(*declared):
        requirement: dict[str, list[str]] = {}
        for part in choice:
            requirement.update(part)
        if requirement not in combined:
            combined.append(requirement)
    return combined


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RESERVED = frozenset({"request", "socket", "state", "scope", "headers", "cookies", "query", "body", "data"})
DESCRIPTIONS = {
    400: "Not readable or not valid: `malformed_request`, `invalid_body` or `invalid_parameters` "
    "(`errors` names each field or parameter and where it was)",
    401: "No or wrong credentials (`unauthorized`, `invalid_token`, `invalid_client`)",
    403: "Authenticated, but not allowed here",
    404: "Nothing there (`not_found` or a more precise code)",
    409: "Conflicts with the current state",
    410: "No longer possible: its time has passed (e.g. `rating_window_closed`)",
    413: "The request body is larger than the service takes (`body_too_large`)",
    422: "Readable, but not acceptable (`invalid_input` or a more precise code)",
    429: "Too many requests (`rate_limited`); `Retry-After` says when to try again",
    503: "The database or the store is not answering (`database_unavailable`, `store_unavailable`); "
    "`Retry-After` says when to try again",
}


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        media_type=PROBLEM_MEDIA_TYPE,
        description=description,
        generate_examples=False,
    )


def _takes_parameters(handler: HTTPRouteHandler) -> bool:
    """Whether the handler reads query, path or header parameters (not dependencies or the request)."""
    injected = set(handler.resolve_dependencies()) | RESERVED
    return any(name not in injected for name in handler.parsed_fn_signature.parameters)


def own_format(handler: HTTPRouteHandler, description: str) -> dict[Any, ResponseSpec]:
    """A route that answers in another protocol's format (a payment channel's callback): its success and
    any other status in whatever media type that protocol says; the edge's own refusals are
    problem+json."""

    def anything(text: str) -> ResponseSpec:
        return ResponseSpec(data_container=Any, media_type="*/*", description=text, generate_examples=False)

    return {
        handler.status_code: anything(description),
        # the protocol's refusal (a channel's failure reply is a 400), or the edge's problem+json
        400: anything(f"{description}: a refusal; a request the edge refuses gets problem+json"),
        "default": anything(f"{description}; a request the edge refuses gets problem+json"),
    }


def problems_for(handler: HTTPRouteHandler, *, secured: bool, path_params: bool) -> dict[Any, ResponseSpec]:
    if description := handler.opt.get("own_format"):
        return own_format(handler, str(description))
    statuses = {400}
    if handler.opt.get("storage", True):
        statuses.add(503)
    if secured:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if handler.http_methods & WRITES:
        statuses |= {409, 413, 422}
    if _takes_parameters(handler):
        statuses.add(422)
    extra = handler.opt.get("problems", {})  # statuses, or {status: description}
    if not isinstance(extra, Mapping):
        extra = {s: DESCRIPTIONS[s] for s in extra}
    specs: dict[Any, ResponseSpec] = {s: _problem(DESCRIPTIONS[s]) for s in sorted(statuses)}
    specs.update({s: _problem(d) for s, d in extra.items()})
    specs["default"] = _problem("Any other error, as problem+json with a stable `code`")
    return specs


class OpenAPITruthPlugin(ReceiveRoutePlugin):
    """Completes each route's documentation as it is registered, from what the route really does."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        path_params = bool(route.path_parameters)
        for handler in {h for h, _ in route.route_handler_map.values()}:
            if not handler.resolve_include_in_schema():
                continue
            security = security_of(handler.resolve_guards())
            own = list(handler.security or [])
            handler.security = own + [s for s in security if s not in own]
            secured = bool(handler.security) or any(
                layer.security for layer in handler.ownership_layers if layer is not handler
            )
            problems = problems_for(handler, secured=secured, path_params=path_params)
            handler.responses = {**problems, **(handler.responses or {})}


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's Struct schemas, plus ``additionalProperties: false`` where the Struct refuses unknown
    fields (the decoder does; the document now says so)."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def components() -> Components:
    return Components(security_schemes=cast("dict[str, Any]", dict(SECURITY_SCHEMES)))


def replace_struct_schema_plugin(plugins: list[Any]) -> None:
    """Put :class:`StrictStructSchemaPlugin` where Litestar's own Struct plugin is (in place: the app is
    iterating this list while plugins initialise)."""
    for i, plugin in enumerate(plugins):
        if type(plugin) is StructSchemaPlugin:
            plugins[i] = StrictStructSchemaPlugin()
