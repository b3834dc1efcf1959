"""The instructor's command line: ``python -m autograder {release,grade,demo}``.

    release [ASSIGNMENT ...]                 regenerate exercises/ from solutions/
    grade ASSIGNMENT SUBMISSIONS --out DIR   autograde a class: DIR/grades.csv, DIR/feedback/
    demo [--out DIR]                         grade the bundled demo class of Homework 1
    checks ASSIGNMENT                        list the checks and who computes their expected value
    hub {setup,start,release,collect,grade,return} --class CLASS.toml   a class on a JupyterHub

See autograder/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from autograder import checks, grading, hub, release, sandbox
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
        "submissions", type=Path, help="folder or .zip of <student>.ipynb, or nbgrader's submitted/"
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
            "--unsandboxed",
            action="store_true",
            help="run students' code without the sandbox (only where it cannot be had)",
        )

    hub.add_parser(commands)

    args, extra = parser.parse_known_args(argv)
    if args.command == "hub":
        return hub.run(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "release":
        names = args.assignments or None
        for path in release.release(names, solutions=args.solutions, exercises=args.exercises):
            print(f"released {path}")
        return 0

    if args.command == "checks":
        source = read_source(source_path(args.solutions, args.assignment))
        for site in checks.plan(source).sites.values():
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
        sandbox=not args.unsandboxed,
    )
    if limits.sandbox and (reason := sandbox.problem()) is not None:
        print(
            f"error: students' notebooks run in a sandbox, which this machine cannot provide: "
            f"{reason}. Install it (`make /usr/bin/bwrap`, as root), or pass --unsandboxed to "
            "run their code with all your rights (never for submissions you do not trust).",
            file=sys.stderr,
        )
        return 2
    if not limits.sandbox:
        print("warning: --unsandboxed: students' code runs with your rights", file=sys.stderr)
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
            )
        except (ValueError, FileNotFoundError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(grading.summary(result))
    return 1 if any(s.status == "error" for s in result.students) else 0


if __name__ == "__main__":
    sys.exit(main())
