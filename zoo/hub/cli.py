"""The hub's verbs of the ``zoo`` command: ``download`` and ``cache ls|rm|verify``.

``zoo.cli`` calls :func:`add_commands` with its subparsers; each verb is set as ``func`` and returns an exit status.
Errors are zoo errors, which ``zoo.cli.main`` prints as one line.

    zoo download org/name [FILES...] [--revision R] [--include PATTERN] [--exclude PATTERN] [--cache-dir D]
                 [--token T] [--force] [--offline]
    zoo cache ls [--cache-dir D]
    zoo cache rm org/name [--revision R] [--cache-dir D]
    zoo cache verify [--repair] [--verbose-checks] [--cache-dir D]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}B"  # pragma: no cover


def _download(args: argparse.Namespace) -> int:
    from zoo.hub.repo import HubRepo

    repo = HubRepo(args.repo_id, revision=args.revision, token=args.token, cache_dir=args.cache_dir,
                   local_files_only=args.offline, force_download=args.force)
    if args.files:
        if args.include or args.exclude:
            print("zoo: --include/--exclude apply to whole-repo downloads; ignoring them for named files",
                  file=sys.stderr)
        for name in args.files:
            print(repo.require(name))
        return 0
    print(repo.snapshot(allow_patterns=args.include or None, ignore_patterns=args.exclude or None,
                        max_workers=args.max_workers))
    return 0


def _cache_ls(args: argparse.Namespace) -> int:
    from zoo.hub.manage import existing_cache_dir, scan_cache

    root = existing_cache_dir(args.cache_dir)
    repos = scan_cache(args.cache_dir)
    if not repos:
        print(f"{root}: empty")
        return 0
    print(f"{'REPO':<40} {'REVISION':<12} {'FILES':>5} {'SIZE':>8}  REFS")
    total = 0
    for repo in repos:
        name = repo.repo_id if repo.repo_type == "model" else f"{repo.repo_type}:{repo.repo_id}"
        print(f"{name:<40} {'':<12} {'':>5} {_size(repo.size):>8}  (on disk)")
        total += repo.size
        for rev in repo.revisions:
            print(f"{'':<40} {rev.commit[:12]:<12} {len(rev.files):>5} {_size(rev.size):>8}  {', '.join(rev.refs)}")
    print(f"{len(repos)} repo(s), {_size(total)} in {root}")
    return 0


def _cache_rm(args: argparse.Namespace) -> int:
    from zoo.hub.manage import delete_from_cache

    freed = delete_from_cache(args.repo_id, revision=args.revision, cache_dir=args.cache_dir)
    what = args.repo_id + (f" at {args.revision}" if args.revision else "")
    print(f"removed {what}: {_size(freed)} freed")
    return 0


def _cache_verify(args: argparse.Namespace) -> int:
    from zoo.hub.manage import repair_cache, verify_cache

    bad = 0
    checked = 0

    def report(check: Any) -> None:
        nonlocal bad, checked
        checked += 1
        if check.bad:
            bad += 1
            used = ", ".join(check.used_by) or "no snapshot"
            name = check.blob if check.status == "outside" else check.blob.name
            print(f"{check.status.upper()}  {check.repo_id}  {name}  ({used}): {check.detail}")
        elif check.status == "unverifiable" and args.verbose_checks:
            print(f"SKIPPED  {check.repo_id}  {check.blob.name}: {check.detail}")

    checks = verify_cache(args.cache_dir, on_check=report)
    if not bad:
        print(f"all {checked} blob(s) match their hashes")
        return 0
    if not args.repair:
        print(f"{bad} bad blob(s) or link(s) of {checked}; fetch them again with `zoo cache verify --repair` "
              f"(or `zoo download REPO --revision COMMIT --force`)")
        return 1

    def repaired(repair: Any) -> None:
        check = repair.check
        print(f"{'REPAIRED' if repair.done else 'NOT REPAIRED'}  {check.repo_id}  {check.blob.name}: {repair.detail}")

    repairs = repair_cache(checks, args.cache_dir, token=args.token, on_repair=repaired)
    left = sum(not r.done for r in repairs)
    print(f"repaired {len(repairs) - left} of {bad} bad blob(s) or link(s)" + (f"; {left} left" if left else ""))
    return 1 if left else 0


def add_commands(subparsers: Any) -> None:
    """Add ``download`` and ``cache`` to the ``zoo`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="cache folder, which must exist (default: ZOO_CACHE, HF_HUB_CACHE, or "
                             "~/.cache/huggingface/hub)")

    dl = subparsers.add_parser("download", parents=[common], help="download a repo or some of its files into the cache",
                               description="Download files of a Hub repo into the cache shared with huggingface_hub "
                                           "and print their paths (the snapshot folder for a whole repo).")
    dl.add_argument("repo_id", help="Hub repo id, e.g. org/name")
    dl.add_argument("files", nargs="*", help="files to download (default: the whole repo)")
    dl.add_argument("--revision", default=None, help="branch, tag or commit sha (default: main)")
    dl.add_argument("--include", action="append", default=[], metavar="PATTERN",
                    help="only files matching this glob, e.g. '*.json' (repeatable)")
    dl.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                    help="skip files matching this glob, e.g. '*.bin' (repeatable)")
    dl.add_argument("--token", default=None, help="Hub token for private or gated repos (default: HF_TOKEN or the "
                                                  "saved login)")
    dl.add_argument("--force", action="store_true", help="download again even if cached (replaces the blobs)")
    dl.add_argument("--offline", action="store_true", help="send no request, use only the cache (like "
                                                           "HF_HUB_OFFLINE=1)")
    dl.add_argument("--max-workers", type=int, default=8, metavar="N", help="parallel downloads (default: 8)")
    dl.set_defaults(func=_download)

    cache = subparsers.add_parser("cache", help="list, remove or verify cached repos",
                                  description="Inspect the cache shared with huggingface_hub.")
    verbs = cache.add_subparsers(dest="cache_command", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("ls", parents=[common], help="repos, revisions and sizes",
                          description="List the cached repos with their revisions (commit, refs, files) and sizes.")
    ls.set_defaults(func=_cache_ls)
    rm = verbs.add_parser("rm", parents=[common], help="remove a repo, or one revision of it",
                          description="Remove a cached repo, or one revision and the blobs only it used.")
    rm.add_argument("repo_id", help="the cached repo, as `zoo cache ls` lists it (org/name)")
    rm.add_argument("--revision", default=None, help="a ref, a commit or a commit prefix (default: the whole repo)")
    rm.set_defaults(func=_cache_rm)
    verify = verbs.add_parser(
        "verify", parents=[common], help="re-hash every blob and report (or --repair) bad ones",
        description="Re-hash every blob against its name and check every snapshot entry leads to a blob of its "
                    "repo. Exit status 1 if anything is corrupt, missing or links outside blobs/ (and, with "
                    "--repair, could not be repaired).")
    verify.add_argument("--repair", action="store_true",
                        help="remove corrupt blobs and snapshot entries that lead outside blobs/, and fetch the "
                             "affected files again from the Hub (needs the network)")
    verify.add_argument("--token", default=None, help="Hub token for --repair of private or gated repos (default: "
                                                      "HF_TOKEN or the saved login)")
    verify.add_argument("--verbose-checks", action="store_true", help="also list blobs that cannot be verified")
    verify.set_defaults(func=_cache_verify)
