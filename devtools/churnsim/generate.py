"""Generate a labelled churn data set with ChurnSim (PyPI ``fightchurn``), the simulator of
the book "Fighting Churn with Data" (C. Gold), and export it as CSV for ``engagement calibrate``.

Development tooling only: not part of the service, not run by ``make test``.

What it does, in one process:

1. starts a throwaway PostgreSQL cluster (``initdb`` in a temporary directory, listening on
   127.0.0.1 on a free port; as user ``postgres`` when run as root),
2. runs ChurnSim's "socialnet7" simulation (``python -m fightchurn.churnsim.churnsim``, a Hydra
   app) with the given seed, number of initial customers and date range; ChurnSim creates its
   own schema (``fightchurn.churnsim.churndb.setup_churn_db``) and writes accounts, subscriptions
   and events to it,
3. exports ``events.csv.gz`` (``customer_id,timestamp,type,event_id``) and ``labels.csv``
   (``customer_id,churned,churn_date,first_seen``) plus ``meta.json``,
4. stops PostgreSQL and deletes the cluster.

Churn is defined as in the book (chapter 4, listing 4.2, "churned periods"): a subscription
whose end date falls inside the simulated period (``end_date <= --end``) churns unless the same
account has another subscription that starts within the allowed gap (7 days) after it and ends
later. ``churn_date`` is that end date. ``first_seen`` is the account's first subscription start.
Events are cut at the end of the simulated period (ChurnSim keeps simulating each customer up to
their next renewal, which can lie up to a month past the end date).

Run it with the interpreter of a venv that has ``fightchurn`` installed; ``run.sh`` beside this
file creates that venv and calls this script.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg2

__all__ = ["main"]

SCHEMA = "socialnet7"
DB_NAME = "churnsim"
DB_USER = "postgres"
ALLOWED_GAP_DAYS = 7


def _pg_bindir() -> Path:
    """Locate the PostgreSQL server binaries (Debian puts them under /usr/lib/postgresql/N/bin)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        cand = Path(out.stdout.strip())
        if (cand / "initdb").exists():
            return cand
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if versions:
        return versions[-1].parent
    sys.exit("PostgreSQL server not found: apt-get install postgresql")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as the ``postgres`` OS user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def throwaway_postgres(workdir: Path) -> Iterator[int]:
    """Start a PostgreSQL cluster in ``workdir`` on 127.0.0.1:<free port>; yield the port."""
    bindir = _pg_bindir()
    pgdir = workdir / "pg"
    pgdir.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(pgdir, pw.pw_uid, pw.pw_gid)
    data = pgdir / "data"
    subprocess.run(
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, "-A", "trust", "-E", "UTF8"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = _free_port()
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c work_mem=256MB -c maintenance_work_mem=512MB"
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_server_user([*pg_ctl, "-o", opts, "-l", str(pgdir / "log"), "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        con = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
        con.close()
        yield port
    finally:
        subprocess.run(
            _as_server_user([*pg_ctl, "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )


def run_churnsim(args: argparse.Namespace, port: int, workdir: Path) -> None:
    """Run ChurnSim's socialnet7 simulation into the throwaway database."""
    tmp = workdir / "tmp"  # ChurnSim keeps its customer-id counter and COPY files in TMPDIR
    out = workdir / "churnsim_out"
    tmp.mkdir()
    out.mkdir()
    env = dict(os.environ)
    env.update(
        {
            "PGPORT": str(port),
            "CHURN_DB": DB_NAME,
            "CHURN_DB_USER": DB_USER,
            "CHURN_DB_PASS": "unused",
            "CHURN_DB_HOST": "127.0.0.1",
            "CHURN_OUT_DIR": str(out),
            "TMPDIR": str(tmp),
        }
    )
    overrides = [
        f"model={SCHEMA}",
        f"random_seed={args.seed}",
        f"init_customers={args.init_customers}",
        f"start_date={args.start}",
        f"end_date={args.end}",
        "n_parallel=1",  # joblib workers would not share the seeded RNG state
        "force=True",
        *args.override,
    ]
    cmd = [sys.executable, "-m", "fightchurn.churnsim.churnsim", *overrides]
    print("running:", " ".join(cmd), flush=True)
    log = workdir / "churnsim.log"
    with open(log, "w") as fh:
        proc = subprocess.run(
            cmd, check=False, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir
        )
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        sys.exit(f"ChurnSim failed (exit {proc.returncode})")


LABELS_SQL = f"""
WITH ends AS (
    SELECT DISTINCT s.account_id, s.end_date
    FROM {SCHEMA}.subscription s
    WHERE s.end_date <= %(end)s::date
),
churns AS (
    SELECT e.account_id, max(e.end_date) AS churn_date
    FROM ends e
    WHERE NOT EXISTS (
        SELECT 1 FROM {SCHEMA}.subscription r
        WHERE r.account_id = e.account_id
          AND r.start_date <= e.end_date + {ALLOWED_GAP_DAYS}
          AND (r.end_date > e.end_date OR r.end_date IS NULL)
    )
    GROUP BY e.account_id
)
SELECT a.id AS customer_id,
       (c.churn_date IS NOT NULL)::int AS churned,
       to_char(c.churn_date, 'YYYY-MM-DD') AS churn_date,
       to_char(min(s.start_date), 'YYYY-MM-DD') AS first_seen
FROM {SCHEMA}.account a
JOIN {SCHEMA}.subscription s ON s.account_id = a.id
LEFT JOIN churns c ON c.account_id = a.id
GROUP BY a.id, c.churn_date
ORDER BY a.id
"""

EVENTS_SQL = f"""
SELECT e.account_id AS customer_id,
       to_char(e.event_time, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS timestamp,
       t.event_type_name AS type,
       's{{seed}}-' || e.account_id || '-' || row_number() OVER (
           PARTITION BY e.account_id ORDER BY e.event_time, e.event_type_id) AS event_id
FROM {SCHEMA}.event e
JOIN {SCHEMA}.event_type t ON t.event_type_id = e.event_type_id
WHERE e.event_time < '{{end}}'::date
ORDER BY e.event_time, e.account_id, e.event_type_id
"""


def export(args: argparse.Namespace, port: int, outdir: Path) -> dict[str, Any]:
    """Write labels.csv and events.csv.gz; return summary statistics."""
    con = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname=DB_NAME)
    outdir.mkdir(parents=True, exist_ok=True)
    with con.cursor() as cur:
        labels_q = cur.mogrify(LABELS_SQL, {"end": args.end}).decode()
        with open(outdir / "labels.csv", "w") as fh:
            cur.copy_expert(f"COPY ({labels_q}) TO STDOUT WITH CSV HEADER", fh)
        events_q = EVENTS_SQL.format(seed=args.seed, end=args.end)
        tmp = outdir / "events.csv.gz.part"
        # mtime=0 so that the same seed gives byte-identical files
        with (
            gzip.GzipFile(tmp, "wb", compresslevel=6, mtime=0) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as gz,
        ):
            cur.copy_expert(f"COPY ({events_q}) TO STDOUT WITH CSV HEADER", gz)
        tmp.rename(outdir / "events.csv.gz")
        cur.execute(
            f"SELECT t.event_type_name, count(*) FROM {SCHEMA}.event e "
            f"JOIN {SCHEMA}.event_type t USING (event_type_id) "
            "WHERE e.event_time < %s::date GROUP BY 1 ORDER BY 2 DESC",
            (args.end,),
        )
        type_counts = {str(k): int(v) for k, v in cur.fetchall()}
        cur.execute(
            f"SELECT min(event_time), max(event_time) FROM {SCHEMA}.event "
            "WHERE event_time < %s::date",
            (args.end,),
        )
        row = cur.fetchone()
        assert row is not None
        first, last = row
        cur.execute(f"SELECT channel, count(*) FROM {SCHEMA}.account GROUP BY 1 ORDER BY 1")
        channels = {str(k): int(v) for k, v in cur.fetchall()}
    con.close()
    n = churned = 0
    with open(outdir / "labels.csv") as fh:
        next(fh)
        for line in fh:
            n += 1
            churned += line.split(",")[1] == "1"
    return {
        "accounts": n,
        "churned": churned,
        "churn_rate": round(churned / n, 4) if n else None,
        "events": sum(type_counts.values()),
        "event_types": type_counts,
        "first_event": first.isoformat() + "Z",
        "last_event": last.isoformat() + "Z",
        "channels": channels,
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--init-customers",
        type=int,
        default=3000,
        help="customers at the start; ChurnSim then adds 10%% a month, growing 10%% a month "
        "(3000 over 6 months gives about 4,830 accounts)",
    )
    p.add_argument("--start", default="2020-01-01", help="simulation start date")
    p.add_argument("--end", default="2020-07-01", help="simulation end date (exclusive)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        help="extra Hydra override for ChurnSim, e.g. --override growth_rate=0.05",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (debugging)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="churnsim-"))
    os.chmod(workdir, 0o755)
    try:
        with throwaway_postgres(workdir) as port:
            print(f"PostgreSQL on 127.0.0.1:{port}, data in {workdir}", flush=True)
            run_churnsim(args, port, workdir)
            t_sim = time.monotonic() - t0
            print(f"simulation done in {t_sim:.0f}s; exporting", flush=True)
            stats = export(args, port, args.out)
        shutil.copy(workdir / "churnsim.log", args.out / "churnsim.log")
        conf = workdir / "churnsim_out" / SCHEMA / f"{SCHEMA}_conf.yaml"
        if conf.exists():
            shutil.copy(conf, args.out / "churnsim_conf.yaml")
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "generator": f"fightchurn {version('fightchurn')} ChurnSim, model {SCHEMA}",
        "seed": args.seed,
        "init_customers": args.init_customers,
        "start": args.start,
        "end_exclusive": args.end,
        "overrides": args.override,
        "churn_definition": (
            "subscription end_date <= end with no subscription starting within "
            f"{ALLOWED_GAP_DAYS} days after it and ending later (book listing 4.2)"
        ),
        "seconds": round(time.monotonic() - t0),
        **stats,
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
