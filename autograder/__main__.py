"""The instructor's command line: ``python -m autograder {release,grade,export,kit,demo,checks}``.

    release [ASSIGNMENT ...]                 regenerate exercises/ from solutions/
    grade ASSIGNMENT SUBMISSIONS --out DIR   autograde a class: DIR/grades.csv, DIR/feedback/
    export ASSIGNMENT --out DIR --format F   DIR/grades.csv as the CSV Canvas or Moodle imports
    kit [--out DIR]                          build the student kit (_build/kit, _build/kit.zip)
    demo [--out DIR]                         grade the bundled demo class of Homework 1
    checks ASSIGNMENT                        list the checks and who computes their expected value
    worker --broker URL [--concurrency N]    grade submissions queued by `grade --broker URL`
    hub {setup,start,release,collect,grade,return} --class CLASS.toml   a class on a JupyterHub

See autograder/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from autograder import check_rewriting, export, grading, hub, kit, late, release, sandbox
from autograder.demo import build_demo_class
from autograder.notebooks import read_source, source_path
from autograder.runner import Limits

DEMO_ASSIGNMENT = "hw1-backprop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    release_parser = commands.add_parser("release", help="regenerate exercises/ from solutions/")
    release_parser.add_argument("assignments", nargs="*", help="default: every assignment")
    release_parser.add_argument("--solutions", type=Path, default=grading.SOLUTIONS)
    release_parser.add_argument("--exercises", type=Path, default=release.EXERCISES)

    grade_parser = commands.add_parser("grade", help="autograde a class")
    grade_parser.add_argument("assignment")
    grade_parser.add_argument(
        "submissions",
        type=Path,
        help="a Canvas or Moodle download (.zip or folder), a folder or .zip of <student>.ipynb, "
        "or nbgrader's submitted/",
    )
    export_parser = commands.add_parser("export", help="grades as the CSV an LMS imports")
    export_parser.add_argument("assignment")
    export_parser.add_argument("--out", type=Path, required=True, help="the grading's --out")
    export_parser.add_argument("--format", choices=export.FORMATS, required=True)
    export_parser.add_argument(
        "--gradebook", type=Path, help="the gradebook exported from Canvas, or Moodle's worksheet"
    )
    export_parser.add_argument("--column", help="the gradebook's column of this assignment")
    export_parser.add_argument(
        "--missing",
        choices=("empty", "zero"),
        default="empty",
        help="the cell of a student without a submission (default: empty)",
    )
    kit_parser = commands.add_parser("kit", help="build the student kit")
    kit_parser.add_argument("--out", type=Path, default=kit.KIT)
    grade_parser.add_argument(
        "--broker", help="grade on the workers of this Redis broker (redis://HOST:PORT/DB)"
    )
    grade_parser.add_argument(
        "--worker-wait",
        type=float,
        metavar="SECONDS",
        help="with --broker: stop after this long without a result and without a worker "
        "answering (default 300; inf: wait for ever)",
    )
    checks_parser = commands.add_parser("checks", help="list an assignment's checks")
    checks_parser.add_argument("assignment")
    checks_parser.add_argument("--solutions", type=Path, default=grading.SOLUTIONS)
    demo_parser = commands.add_parser("demo", help="grade the bundled demo class")
    for command in (grade_parser, demo_parser):
        command.add_argument("--out", type=Path, required=command is grade_parser)
        command.add_argument("--solutions", type=Path, default=grading.SOLUTIONS)
        command.add_argument("--workers", type=int, default=2, help="notebooks run at once")
        command.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout)
        command.add_argument("--total-timeout", type=float, default=Limits.total_timeout)
        command.add_argument("--force", action="store_true", help="re-grade unchanged submissions")
        command.add_argument(
            "--course", type=Path, default=late.COURSE_FILE, help="deadlines and late policy"
        )
        command.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
        command.add_argument(
            "--max-processes",
            type=int,
            default=Limits.max_processes,
            help="processes and threads of one kernel at once",
        )
        command.add_argument(
            "--output-mb", type=float, default=Limits.output_mb, help="outputs of one notebook"
        )
        command.add_argument(
            "--sandbox",
            choices=("auto", *sandbox.TIERS),
            default="auto",
            help="isolation of students' kernels (default auto: the strongest this machine "
            "offers, never none; autograder/README.md lists what each keeps)",
        )
        command.add_argument(
            "--unsandboxed",
            dest="sandbox",
            action="store_const",
            const="none",
            help="= --sandbox none: students' code runs with your rights",
        )

    worker_parser = commands.add_parser("worker", help="grade submissions from a queue")
    worker_parser.add_argument("--broker", required=True, help="redis://HOST:PORT/DB")
    worker_parser.add_argument("--concurrency", type=int, default=2, help="notebooks at once")
    worker_parser.add_argument(
        "--sandbox",
        choices=("auto", *sandbox.TIERS),
        default="auto",
        help="isolation tier (default auto: the strongest this machine can give; never none)",
    )
    worker_parser.add_argument("--solutions", type=Path, default=grading.SOLUTIONS)
    worker_parser.add_argument(
        "--visibility-timeout",
        type=float,
        default=3600.0,
        help="seconds after which a task taken by a worker that vanished is delivered again",
    )
    worker_parser.add_argument("--name", help="the worker's name (default: autograder@HOST)")
    hub.add_parser(commands)

    args, extra = parser.parse_known_args(argv)
    if args.command == "hub":
        return hub.run(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "worker":
        from autograder.queue import run_worker  # Celery is imported only where it is used

        return run_worker(
            args.broker,
            concurrency=args.concurrency,
            sandbox_tier=args.sandbox,
            solutions=args.solutions,
            visibility_timeout=args.visibility_timeout,
            hostname=args.name,
        )
    if args.command == "release":
        names = args.assignments or None
        for path in release.release(names, solutions=args.solutions, exercises=args.exercises):
            print(f"released {path}")
        return 0

    if args.command == "export":
        try:
            path, result = export.write(
                args.out,
                args.assignment,
                args.format,
                gradebook=args.gradebook,
                column=args.column,
                missing=args.missing,
            )
        except (ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        scaled = f", scaled by {result.scale:g}" if result.scale != 1 else ""
        print(f"{path}: {result.filled} grades{scaled}, {result.empty} students without one")
        if result.unmatched:
            print(
                f"warning: {len(result.unmatched)} graded students are not in the gradebook: "
                + ", ".join(f"{g.name or '?'} ({g.student})" for g in result.unmatched),
                file=sys.stderr,
            )
            return 1
        return 0

    if args.command == "kit":
        zipped = kit.build(args.out)
        print(f"the student kit: {args.out}/ and {zipped}")
        return 0

    if args.command == "checks":
        source = read_source(source_path(args.solutions, args.assignment))
        for site in check_rewriting.plan(source).sites.values():
            where = (
                "the grader holds the expected value"
                if site.from_reference
                else "expected value computed in the sandbox (from the student's objects)"
            )
            print(f"{site.id:<45} {site.kind:<13} {where}")
        return 0

    limits = Limits(
        cell_timeout=args.cell_timeout,
        total_timeout=args.total_timeout,
        memory_mb=args.memory_mb,
        max_processes=args.max_processes,
        output_mb=args.output_mb,
        sandbox=args.sandbox,
    )
    if args.sandbox in ("auto", "cgroup2"):
        here = [sys.executable, "-m", "autograder", *(sys.argv[1:] if argv is None else argv)]
        if (scoped := sandbox.delegated_scope(here)) is not None:
            os.environ[sandbox.IN_SCOPE_ENV] = "1"
            os.execvp(scoped[0], scoped)  # the same command, where cgroup2 can be had
    try:
        tier = sandbox.choose(args.sandbox)
    except sandbox.SandboxUnavailable as error:
        hint = (
            "Pass --unsandboxed to run students' code with all your rights (never for "
            "submissions you do not trust)"
            if args.sandbox == "auto"
            else "--sandbox auto picks the strongest one this machine has"
        )
        print(f"error: {error}. {hint}.", file=sys.stderr)
        return 2
    if tier.sandboxed:
        weaker = "; ".join(sandbox.weaker_because(tier))
        print(f"sandbox: {tier.name}" + (f" (not stronger: {weaker})" if weaker else ""))
    else:
        print("warning: --sandbox none: students' code runs with your rights", file=sys.stderr)
    if args.command == "demo":
        out = args.out or Path("_build/grading-demo")
        with tempfile.TemporaryDirectory() as tmp:
            submissions = build_demo_class(Path(tmp), solutions=args.solutions)
            result = grading.grade_class(
                DEMO_ASSIGNMENT,
                submissions,
                out,
                solutions=args.solutions,
                workers=args.workers,
                limits=limits,
                force=args.force,
                course=args.course,
            )
    else:
        try:
            result = grading.grade_class(
                args.assignment,
                args.submissions,
                args.out,
                solutions=args.solutions,
                workers=args.workers,
                limits=limits,
                force=args.force,
                course=args.course,
                broker=args.broker,
                worker_wait=args.worker_wait,
            )
        except (ValueError, FileNotFoundError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(grading.summary(result))
    return 1 if any(s.status == "error" for s in result.students) else 0


if __name__ == "__main__":
    sys.exit(main())
