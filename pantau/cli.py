"""Command line: pantau run | demo | server | worker | check | apikey | user | schema."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol

from events.store import Store
from pantau import control, demo_media
from pantau.config import ConfigError, PantauConfig, load
from pantau.control import socket_path
from pantau.heap import limit_arenas
from pantau.reloader import ConfigSource, ReloadResult

log = logging.getLogger("pantau")

EXIT_INVALID_CONFIG = 2
BUNDLED_CONFIG = Path(__file__).resolve().parent.parent / "cameras.yaml"
SHARED_MODEL = "models/yolo11n_int8_openvino_model"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def demo_env() -> dict[str, str]:
    """Environment for loading the demo config: the shared YOLO11n export when present."""
    env = dict(os.environ)
    assets = demo_media.find_assets()
    if "PANTAU_MODEL" not in env and assets is not None and (assets / SHARED_MODEL).is_dir():
        env["PANTAU_MODEL"] = str(assets / SHARED_MODEL)
    return env


def _load_or_exit(path: Path, env: Mapping[str, str] | None = None) -> PantauConfig:
    warnings: list[str] = []
    try:
        config = load(path, env, warnings)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(problem + "\n")
        sys.exit(EXIT_INVALID_CONFIG)
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    return config


class _Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def _serve(config: PantauConfig, source: ConfigSource, role: str = "all") -> None:
    from pantau.runtime import Runtime  # heavy imports (torch) only when really running

    await _until_signal(Runtime(config, source.path.parent, role=role, source=source))


async def _until_signal(runtime: _Service) -> None:
    """Start, run until SIGINT/SIGTERM, stop (a signal during start stops at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_sighup = getattr(runtime, "on_sighup", None)
    if on_sighup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        start = asyncio.create_task(runtime.start())
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()
            await waiter
        else:
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
        log.info("stopping")
    finally:
        await runtime.stop()


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_exit(Path(args.config), demo_env())
    summary = (
        f"{args.config}: OK ({len(config.cameras)} cameras, {len(config.opds)} OPDs, "
        f"{len(config.routing)} routes, {len(config.walls)} walls)\n"
    )
    sys.stdout.write(summary)
    return 0


def cmd_run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    path = Path(args.config)
    config = _load_or_exit(path, env)
    if args.port is not None:
        config = config.model_copy(
            update={"server": config.server.model_copy(update={"port": args.port})}
        )
    asyncio.run(_serve(config, ConfigSource(path.resolve(), env, args.port)))
    return 0


def _scaled_out_or_exit(path: Path, role: str, env: Mapping[str, str] | None) -> PantauConfig:
    config = _load_or_exit(path, env)
    if config.bus == "memory":
        sys.stderr.write(
            f"{path}: bus: pantau {role} needs a Redis bus shared by the server and the workers,"
            " e.g. bus: redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0 (or run everything in one"
            " process with `pantau run`)\n"
        )
        sys.exit(EXIT_INVALID_CONFIG)
    return config


def cmd_server(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    path = Path(args.config)
    config = _scaled_out_or_exit(path, "server", env)
    if args.port is not None:
        config = config.model_copy(
            update={"server": config.server.model_copy(update={"port": args.port})}
        )
    asyncio.run(_serve(config, ConfigSource(path.resolve(), env, args.port), role="server"))
    return 0


def cmd_worker(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    path = Path(args.config)
    config = _scaled_out_or_exit(path, "worker", env)
    host, _, port = args.media_listen.rpartition(":")
    if not port.isdigit():
        sys.stderr.write(f"--media-listen {args.media_listen!r}: expected HOST:PORT\n")
        return EXIT_INVALID_CONFIG

    async def run() -> None:
        from pantau.worker_role import WorkerRuntime

        worker = WorkerRuntime(
            config, path.resolve().parent, args.name, args.capacity,
            media_host=host or "0.0.0.0", media_port=int(port), media_url=args.media_url,
            source=ConfigSource(path.resolve(), env),
        )  # fmt: skip
        await _until_signal(worker)

    asyncio.run(run())
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Validate here first (errors as `pantau check` prints them, nothing sent), then ask the
    running process over its control socket and print what it applied."""
    path = Path(args.config)
    config = _load_or_exit(path, demo_env())
    sock = socket_path((path.resolve().parent / config.storage.data_dir).resolve())
    if not sock.exists():
        sys.stderr.write(f"{path}: no running pantau found for this file ({sock} is missing)\n")
        return 1
    try:
        answer = control.request(sock, "reload", by=f"pantau reload ({getpass.getuser()})")
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{sock}: the running pantau did not answer: {exc}\n")
        return 1
    result = ReloadResult.model_validate(answer)
    out = sys.stdout if result.ok else sys.stderr
    out.write("".join(f"{line}\n" for line in result.lines()))
    return 0 if result.ok else EXIT_INVALID_CONFIG


def cmd_train(args: argparse.Namespace) -> int:
    """Train on the site's labels (as the wall's "Latih" button does), print the held-back
    accuracy per state; `--enable` lets the rules use it (else enable it after looking)."""
    from pantau.camera_host import STATE_MODELS
    from pantau.state_labels import StateLabels
    from pantau.state_training import NothingToTrain, StateTraining, report

    async def work(config: PantauConfig, path: Path, store: Store) -> int:
        data = path.resolve().parent / config.storage.data_dir
        training = StateTraining(config, StateLabels(store, data / "state_labels"),
                                 data / STATE_MODELS)  # fmt: skip
        try:
            model = await training.train(args.camera, args.zone, args.enable)
        except (LookupError, NothingToTrain) as exc:
            sys.stderr.write(f"{path}: {exc}\n")
            return 1
        sys.stdout.write("".join(f"{line}\n" for line in report(model)))
        saved = data / STATE_MODELS / args.camera / args.zone / f"v{model.version}.npz"
        sys.stdout.write(f"saved: {saved}{' (enabled)' if args.enable else ''}\n")
        return 0

    return _with_store(args.config, work)


def _with_store(
    config_path: str, work: Callable[[PantauConfig, Path, Store], Awaitable[int]]
) -> int:
    """Open the site's database (as `pantau run` would find it), run `work`, close it."""
    path = Path(config_path)
    config = _load_or_exit(path, demo_env())
    store = Store(path.resolve().parent / config.storage.data_dir / "pantau.db")

    async def run() -> int:
        await store.open()
        try:
            return await work(config, path, store)
        finally:
            await store.close()

    return asyncio.run(run())


def cmd_apikey(args: argparse.Namespace) -> int:
    """Make, list or revoke the API keys OPD systems use for POST /api/alerts and /api/cap."""
    from events.api_keys import ApiKeys

    async def work(config: PantauConfig, path: Path, store: Store) -> int:
        keys = ApiKeys(store)
        if args.action == "create":
            if args.opd not in {o.id for o in config.opds}:
                sys.stderr.write(f"unknown OPD {args.opd!r} (see opds: in {path})\n")
                return EXIT_INVALID_CONFIG
            info, key = await keys.create(args.opd, args.label)
            sys.stdout.write(f"{info.id} {info.opd_id}\n{key}\n")
            sys.stderr.write("Keep this key now: only its hash is stored.\n")
        elif args.action == "revoke":
            if not await keys.revoke(args.id):
                sys.stderr.write(f"no live key {args.id!r}\n")
                return 1
        else:
            for k in await keys.list():
                state = f"revoked {k.revoked_at}" if k.revoked_at else "live"
                sys.stdout.write(f"{k.id}\t{k.opd_id}\t{k.label}\t{k.created_at}\t{state}\n")
        return 0

    return _with_store(args.config, work)


def cmd_user(args: argparse.Namespace) -> int:
    """Accounts for the wall: add (or change) one, list them, disable one."""
    import getpass

    from wallboard.auth import Accounts, Role

    async def work(config: PantauConfig, path: Path, store: Store) -> int:
        accounts = Accounts(store)
        if args.action == "add":
            if args.opd and args.opd not in {o.id for o in config.opds}:
                sys.stderr.write(f"unknown OPD {args.opd!r} (see opds: in {path})\n")
                return EXIT_INVALID_CONFIG
            password = os.environ.get("PANTAU_PASSWORD") or getpass.getpass("password: ")
            try:
                user = await accounts.add(args.username, password, Role(args.role),
                                          args.name, args.opd)  # fmt: skip
            except ValueError as exc:
                sys.stderr.write(f"{exc}\n")
                return 1
            sys.stdout.write(f"{user.username}\t{user.role}\t{user.opd_id or ''}\n")
        elif args.action == "disable":
            if not await accounts.disable(args.username):
                sys.stderr.write(f"no user {args.username!r}\n")
                return 1
        else:
            for user, off in await accounts.all():
                state = "disabled" if off else "active"
                sys.stdout.write(f"{user.username}\t{user.role}\t{user.opd_id or ''}\t{state}\n")
        return 0

    return _with_store(args.config, work)


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the published JSON schemas (event envelope, incident, alert, ...) to a folder."""
    import json

    from events.model import json_schemas

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    schemas = json_schemas()
    for name, schema in schemas.items():
        (out / f"{name}.schema.json").write_text(
            json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        )
    sys.stdout.write(f"wrote {len(schemas)} schemas to {out}\n")
    return 0


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", value):
        raise argparse.ArgumentTypeError("a short slug: lowercase letters, digits and '-'")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pantau", description="Pantau command-center video and event system"
    )
    parser.add_argument("--log-level", default=os.environ.get("PANTAU_LOG_LEVEL", "info"))
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run cameras, analytics, events and the wall")
    p_run.add_argument("config", nargs="?", default="cameras.yaml")
    p_run.add_argument("--port", type=int, default=None, help="override server.port")
    p_demo = sub.add_parser("demo", help="run the bundled demo (loopback RTSP cameras)")
    p_demo.add_argument("config", nargs="?", default=str(BUNDLED_CONFIG))
    p_demo.add_argument("--port", type=int, default=None, help="override server.port")
    p_server = sub.add_parser(
        "server", help="scaled out: desk, store, routing, wall and API (cameras on workers)"
    )
    p_server.add_argument("config", nargs="?", default="cameras.yaml")
    p_server.add_argument("--port", type=int, default=None, help="override server.port")
    p_worker = sub.add_parser(
        "worker", help="scaled out: capture, analytics, recording for the cameras it holds"
    )
    p_worker.add_argument("config", nargs="?", default="cameras.yaml")
    p_worker.add_argument("--name", required=True, type=_slug, help="this box's name (slug)")
    p_worker.add_argument("--capacity", type=int, default=None,
                          help="hold at most this many cameras (default: no limit)")  # fmt: skip
    p_worker.add_argument(
        "--media-listen", default="0.0.0.0:8091", help="HOST:PORT of its signed media endpoint"
    )
    p_worker.add_argument(
        "--media-url", default=None, help="how the server reaches it (http://<fqdn>:<port>)"
    )
    p_reload = sub.add_parser(
        "reload", help="apply a changed cameras.yaml to the running pantau (no restart)"
    )
    p_reload.add_argument("config", nargs="?", default="cameras.yaml")
    p_replay = sub.add_parser(
        "replay", help="run a video or a camera's recordings through its rules, with a chart"
    )
    p_replay.add_argument("config", nargs="?", default="cameras.yaml")
    p_replay.add_argument("video", nargs="?", default=None, help="a video file (else --from/--to)")
    p_replay.add_argument("--camera", required=True, help="whose zones and rules to use")
    p_replay.add_argument("--from", dest="start", default=None, help="recordings from (ISO time)")
    p_replay.add_argument("--to", dest="end", default=None, help="recordings until (ISO time)")
    p_replay.add_argument("--out", default=None, help="chart PNG (default replay-<camera>.png)")
    p_replay.add_argument("--json", default=None, help="also write the report as JSON here")
    p_train = sub.add_parser(
        "train", help="train a camera zone's state model from its labels (kering/banjir...)"
    )
    p_train.add_argument("config", nargs="?", default="cameras.yaml")
    p_train.add_argument("--camera", required=True)
    p_train.add_argument("--zone", required=True)
    p_train.add_argument("--enable", action="store_true", help="let rules use it at once")
    p_check = sub.add_parser("check", help="validate cameras.yaml without starting anything")
    p_check.add_argument("config", nargs="?", default="cameras.yaml")
    p_key = sub.add_parser("apikey", help="API keys of OPD systems (intake API)")
    p_key.add_argument("--config", default="cameras.yaml")
    key_sub = p_key.add_subparsers(dest="action", required=True)
    k_create = key_sub.add_parser("create", help="make a key for an OPD (printed once)")
    k_create.add_argument("opd")
    k_create.add_argument("--label", default="")
    key_sub.add_parser("list", help="list keys (never the keys themselves)")
    k_revoke = key_sub.add_parser("revoke", help="revoke a key by its id")
    k_revoke.add_argument("id")
    p_user = sub.add_parser("user", help="accounts for the wall (roles, OPD users)")
    p_user.add_argument("--config", default="cameras.yaml")
    user_sub = p_user.add_subparsers(dest="action", required=True)
    u_add = user_sub.add_parser("add", help="add or change an account (password from "
                                "PANTAU_PASSWORD or a prompt)")  # fmt: skip
    u_add.add_argument("username")
    u_add.add_argument("--role", required=True,
                       choices=["viewer", "operator", "supervisor", "admin", "opd"])  # fmt: skip
    u_add.add_argument("--opd", default=None, help="the OPD of an opd user")
    u_add.add_argument("--name", default="", help="name shown on the wall")
    user_sub.add_parser("list", help="list accounts")
    u_off = user_sub.add_parser("disable", help="disable an account and end its sessions")
    u_off.add_argument("username")
    p_schema = sub.add_parser("schema", help="write the events' JSON schemas to a folder")
    p_schema.add_argument("dir", nargs="?", default="docs/schema")
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "check":
        return cmd_check(args)
    if args.command == "replay":
        from pantau.replay_cli import cmd_replay  # heavy imports only for a replay

        return cmd_replay(args, _load_or_exit(Path(args.config), demo_env()))
    if args.command == "reload":
        return cmd_reload(args)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "apikey":
        return cmd_apikey(args)
    if args.command == "user":
        return cmd_user(args)
    if args.command == "schema":
        return cmd_schema(args)
    if args.command in ("run", "demo", "server", "worker"):
        limit_arenas()  # before any thread starts (pantau/heap.py says why)
    if args.command == "server":
        return cmd_server(args, demo_env())
    if args.command == "worker":
        return cmd_worker(args, demo_env())
    # run and demo differ only in the default config; both may use the shared model export.
    return cmd_run(args, demo_env())


if __name__ == "__main__":
    sys.exit(main())
