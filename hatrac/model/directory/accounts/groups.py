"""SQL of nested groups: groups, their user and group members, and the closure.

Membership is the transitive closure of "group contains user" and "group
contains group", computed by a recursive query (:func:`closure_of`) that
``UNION`` keeps finite when groups contain each other in a cycle.
"""

from __future__ import annotations

from typing import Any, Optional

from .changes import notify_change


# the groups that contain the user whose id is bound first, directly or through
# other groups; UNION (not UNION ALL) drops repeats, so cycles terminate
def closure_of(direct: str) -> str:
    """The recursive CTE ``closure(id)``: the groups ``direct`` selects, and every
    group that contains one of them, however deep the nesting."""
    return (
        f"closure(id) AS ({direct}"
        " UNION"
        " SELECT gg.group_id FROM auth_group_groups gg JOIN closure c ON gg.member_id = c.id)"
    )


CLOSURE = closure_of(
    "SELECT ug.group_id FROM auth_user_groups ug JOIN who ON ug.user_id = who.user_id"
)


def group_id(tx: Any, name: str) -> Optional[int]:
    row = tx.one("SELECT id FROM auth_groups WHERE name = %s", (name,))
    return row[0] if row else None


def add_group(tx: Any, name: str, now: float) -> bool:
    """A new group; False when the name is taken."""
    row = tx.one(
        "INSERT INTO auth_groups (name, created) VALUES (%s, %s) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, now),
    )
    return row is not None


def remove_group(tx: Any, name: str) -> bool:
    found = group_id(tx, name)
    if found is None:
        return False
    tx.execute("DELETE FROM auth_user_groups WHERE group_id = %s", (found,))
    tx.execute(
        "DELETE FROM auth_group_groups WHERE group_id = %s OR member_id = %s", (found, found)
    )
    tx.execute("DELETE FROM auth_groups WHERE id = %s", (found,))
    notify_change(tx)
    return True


def add_user_to_group(tx: Any, group: int, user: int) -> bool:
    row = tx.one(
        "INSERT INTO auth_user_groups (group_id, user_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING group_id",
        (group, user),
    )
    notify_change(tx)
    return row is not None


def add_group_to_group(tx: Any, group: int, member: int) -> bool:
    row = tx.one(
        "INSERT INTO auth_group_groups (group_id, member_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING group_id",
        (group, member),
    )
    notify_change(tx)
    return row is not None


def remove_user_from_group(tx: Any, group: int, user: int) -> bool:
    cursor = tx.execute(
        "DELETE FROM auth_user_groups WHERE group_id = %s AND user_id = %s", (group, user)
    )
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def remove_group_from_group(tx: Any, group: int, member: int) -> bool:
    cursor = tx.execute(
        "DELETE FROM auth_group_groups WHERE group_id = %s AND member_id = %s", (group, member)
    )
    changed = cursor.rowcount > 0
    notify_change(tx)
    return changed


def list_groups(tx: Any) -> list[tuple[str, list[str], list[str]]]:
    """Every group with its direct user members and direct group members."""
    groups = {row[0]: ([], []) for row in tx.all("SELECT name FROM auth_groups ORDER BY name")}
    for group, user in tx.all(
        "SELECT g.name, u.name FROM auth_user_groups ug JOIN auth_groups g ON g.id = ug.group_id "
        "JOIN auth_users u ON u.id = ug.user_id ORDER BY u.name"
    ):
        groups[group][0].append(user)
    for group, member in tx.all(
        "SELECT g.name, m.name FROM auth_group_groups gg JOIN auth_groups g ON g.id = gg.group_id "
        "JOIN auth_groups m ON m.id = gg.member_id ORDER BY m.name"
    ):
        groups[group][1].append(member)
    return [(name, users, members) for name, (users, members) in groups.items()]


def groups_of_user(tx: Any, user_id: int) -> list[str]:
    """Names of every group containing the user, directly or through nested groups."""
    rows = tx.all(
        f"WITH RECURSIVE who(user_id) AS (SELECT %s), {CLOSURE} "
        "SELECT g.name FROM auth_groups g WHERE g.id IN (SELECT id FROM closure) ORDER BY g.name",
        (user_id,),
    )
    return [row[0] for row in rows]
