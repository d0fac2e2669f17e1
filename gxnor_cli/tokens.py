"""``gxnor token``: a new API token made straight in the database, from the server's shell."""

from __future__ import annotations

import argparse

from gxnor_cli.common import fail, local_data_dir, service_env, service_flags


def register(sub) -> None:
    p = sub.add_parser("token", help="make a new API token directly in the database (server-side admin)")
    p.add_argument("--user", default="admin", help="whose token (default: admin)")
    p.add_argument("--name", dest="token_name", default="cli", help="a label for the token")
    p.add_argument("--expires-in-days", dest="expires_in_days", type=_days, metavar="N",
                   help="the token stops working N days from now (1-3650; default: never)")
    p.add_argument("--admin", action="store_true", help="also make the user an admin (restores admin rights)")
    service_flags(p, data_dir_default=local_data_dir())
    p.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace) -> int:
    """A new API token straight in the database (whoever can read the data directory is trusted)."""
    from sqlalchemy import select

    from app.auth import issue_token
    from app.db import session_scope
    from app.main import prepare_database
    from app.models import User
    from app.settings import Settings

    service_env(args)
    settings = Settings()
    settings.ensure_dirs()
    prepare_database(settings)
    with session_scope(settings.db_url) as session:
        user = session.scalars(select(User).where(User.name == args.user)).first()
        if user is None:
            return fail(f"--user: no user named {args.user!r}")
        if args.admin:  # restores admin rights from the server's shell (e.g. no admin is left)
            user.is_admin = True
        _, token = issue_token(session, user.id, args.token_name, expires_in_days=args.expires_in_days)
    print(token)
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError(f"must be 1 to 3650 days, not {days}")
    return days
