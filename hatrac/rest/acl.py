"""ACL sub-resources: ``/r;acl``, ``/r;acl/ACCESS``, ``/r;acl/ACCESS/ROLE``.

``r`` may be a namespace, an object or a version. Reading ACLs needs
ownership of the resource, as does changing them; every change is checked
against If-Match and refused when it would leave the resource ownerless.
"""

from __future__ import annotations

from flask import Response, request

from ..errors import BadRequest, NotFound
from ..model.conditions import NotModified
from . import Call, by_method, register_family, render
from .authn import audit_acl_change
from .bodies import parse_json, read_small_body
from .headers import parse_preconditions
from .names import not_modified

ACL_BODY_LIMIT = 1024 * 1024


def _parts(call: Call) -> tuple:
    arguments = call.path.arguments
    access = arguments[0] if len(arguments) > 0 else None
    role = arguments[1] if len(arguments) > 1 else None
    return access, role


def get_acl(call: Call) -> Response:
    access, role = _parts(call)
    target = call.model.get_acls(call.client, call.path.name, call.path.version)
    acls = target.acls
    if access is not None:
        call.model.check_access_mode(target, access)
    try:
        parse_preconditions(request.headers).check(target.etag, safe_method=True)
    except NotModified:
        return not_modified(target.etag)
    if access is None:
        return render.json_response(acls, etag=target.etag)
    if role is None:
        return render.json_response(acls[access], etag=target.etag)
    if role not in acls[access]:
        raise NotFound(f"The role {role!r} is not in the {access} ACL.")
    response = Response(role + "\n", mimetype="text/plain")
    response.headers["ETag"] = target.etag
    return response


def _role_list(body: bytes) -> list:
    roles = parse_json(body, "The ACL body must be a JSON array of role strings.")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise BadRequest("The ACL body must be a JSON array of non-empty role strings.")
    return roles


def put_acl(call: Call) -> Response:
    access, role = _parts(call)
    conditions = parse_preconditions(request.headers)
    if role is None:
        roles = _role_list(read_small_body(ACL_BODY_LIMIT))

        def change(_old: list) -> list:
            return roles
    else:

        def change(old: list) -> list:
            return [*old, role]

    target = call.model.change_acl(
        call.client, call.path.name, call.path.version, access, change, conditions
    )
    audit_acl_change(call, access, role, target.acls[access])
    return render.no_content(etag=target.etag)


def delete_acl(call: Call) -> Response:
    access, role = _parts(call)
    conditions = parse_preconditions(request.headers)
    if role is None:

        def change(_old: list) -> list:
            return []
    else:

        def change(old: list) -> list:
            if role not in old:
                raise NotFound(f"The role {role!r} is not in the {access} ACL.")
            return [r for r in old if r != role]

    target = call.model.change_acl(
        call.client, call.path.name, call.path.version, access, change, conditions
    )
    audit_acl_change(call, access, role, target.acls[access])
    return render.no_content(etag=target.etag)


def route_acl(call: Call) -> Response:
    if not call.path.arguments:
        # the ACL set is read whole and changed one access mode at a time (the
        # protocol has PUT and DELETE on ;acl/ACCESS only): 405, Allow: GET, HEAD
        return by_method(call, {"GET": get_acl})
    return by_method(call, {"GET": get_acl, "PUT": put_acl, "DELETE": delete_acl})


register_family("acl", route_acl)
