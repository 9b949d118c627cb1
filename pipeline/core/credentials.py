"""Registry credentials from the environment: one rule for the artifact store and for releases.

Pure: the environment arrives as a mapping. A registry login is `<PREFIX>_USER` and
`<PREFIX>_PASSWORD` (`FACTORY_STORE_*` for the `oci://` artifact store, `FACTORY_REGISTRY_*` for
the registry `factory release` pushes images to), whatever the registry's host; in a GitLab job,
`CI_REGISTRY_USER` and `CI_REGISTRY_PASSWORD` when the registry is the project's own
(`CI_REGISTRY`, `host[:port]`), never sent to another one. The prefixed variables win.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.core.errors import InvalidInput

STORE = "FACTORY_STORE"  # the oci:// artifact store
REGISTRY = "FACTORY_REGISTRY"  # the registry container images are released to


def registry_credentials(env: Mapping[str, str], host: str, *, prefix: str) -> tuple[str, str] | None:
    """The user and password for the registry at `host` (`host[:port]`), or None for no login.

    Half a login (a user without a password, or the reverse) is InvalidInput naming the missing
    variable, never a value; its code is `<what>-credentials` (`store-credentials`, ...).
    """
    for user_var, password_var, applies in (
        (f"{prefix}_USER", f"{prefix}_PASSWORD", True),
        ("CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", env.get("CI_REGISTRY", "").lower() == host.lower()),
    ):
        user, password = env.get(user_var, ""), env.get(password_var, "")
        if (user or password) and applies:
            if not (user and password):
                missing = password_var if user else user_var
                raise InvalidInput(
                    f"{missing} is not set, but {user_var if user else password_var} is",
                    hint="set both, or neither for a registry that needs no login",
                    code=f"{prefix.removeprefix('FACTORY_').lower()}-credentials",
                )
            return user, password
    return None
