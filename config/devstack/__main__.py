"""python -m config.devstack {run,exec,serve-postgres,serve-redis,wait,prepare}"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="bring the whole system up under honcho (make run)")
    exec_parser = commands.add_parser("exec", help="run a command with PostgreSQL and Redis up (make test)")
    exec_parser.add_argument("argv", nargs=argparse.REMAINDER)
    commands.add_parser("serve-postgres", help="Procfile entry: the embedded PostgreSQL")
    commands.add_parser("serve-redis", help="Procfile entry: the embedded Redis")
    wait_parser = commands.add_parser("wait", help="wait for the database and Redis")
    wait_parser.add_argument("--migrated", action="store_true", help="also wait for migrations")
    commands.add_parser("prepare", help="wait, migrate, create the admin, print the URLs")
    commands.add_parser("demo", help="Procfile entry: one checkout through the API, followed")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from config.devstack import demo

        return demo.run()
    if args.command in ("wait", "prepare"):
        from config.devstack import bootstrap

        return bootstrap.wait(migrated=args.migrated) if args.command == "wait" else bootstrap.prepare()
    from config.devstack import stack

    if args.command == "exec":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            parser.error("exec needs a command after --")
        return stack.exec_with_services(command)
    handlers = {"run": stack.run, "serve-postgres": stack.serve_postgres, "serve-redis": stack.serve_redis}
    return handlers[args.command]()


if __name__ == "__main__":
    sys.exit(main())
