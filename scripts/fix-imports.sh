#!/usr/bin/env bash
# Rewrites imports through the crate root into imports from the defining
# module, from lib.rs's `pub use` lines: `use crate::Error;` becomes
# `use crate::error::Error;`, a grouped `use crate::{Error, VaultClient, kv::Kv};`
# becomes one `use` line per module, and a path in code (`crate::JwtClaims`,
# `$crate::VaultClient` in a macro) is spelled from its module too. Comments
# and doc links are left alone (the public path is the right one there).
#
#   scripts/fix-imports.sh              # rewrite vault-secret/src in place
#   scripts/fix-imports.sh --dry-run    # list the files it would change
#   scripts/fix-imports.sh PATH/TO/src  # another crate
#
# Then run `cargo fmt --all` (it sorts the new lines) and
# `scripts/check-layers.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import re
import sys
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
dry_run = "--dry-run" in sys.argv[1:]
src = Path(args[0] if args else "vault-secret/src")
lib = (src / "lib.rs").read_text()

def split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts

modules = set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;", lib, re.M))
home = {}
for stmt in re.findall(r"^\s*pub use\s+([^;]+);", lib, re.M | re.S):
    stmt = " ".join(stmt.split())
    head, _, rest = stmt.partition("::")
    if head not in modules or not rest:
        continue
    rest = rest.strip()
    for item in split_top(rest[1:-1]) if rest.startswith("{") else [rest]:
        if " as " in item:
            continue  # a renamed re-export has no name of its own in the module
        name = item.split("::")[-1].strip()
        home[name] = head + "::" + "::".join(item.split("::")[:-1] + [name])

def rewrite_item(item):
    """`Error` -> `error::Error`; `Error as E` -> `error::Error as E`."""
    first = re.split(r"::|\s", item, maxsplit=1)[0]
    if first in home:
        return home[first] + item[len(first):]
    return item

def group(items):
    """Items by first segment, in order: [(segment, [rest or None])]."""
    groups = {}
    for item in items:
        head, sep, rest = item.partition("::")
        if not sep:
            head, rest = item, None
        groups.setdefault(head.strip(), []).append(rest.strip() if rest else None)
    return groups

def render(head, rests):
    if rests == [None]:
        return head
    if len(rests) == 1:
        return f"{head}::{rests[0]}"
    inner = ", ".join("self" if r is None else r for r in rests)
    return f"{head}::{{{inner}}}"

use_re = re.compile(r"^(?P<indent>[ \t]*)(?P<vis>(?:pub(?:\([^)]*\))?\s+)?)use\s+(?P<root>\$?crate)::(?P<tree>[^;]+);", re.M | re.S)

def fix_use(m):
    tree = " ".join(m.group("tree").split())
    items = split_top(tree[1:-1]) if tree.startswith("{") else [tree]
    new_items = [rewrite_item(i) for i in items]
    if new_items == items:
        return m.group(0)
    lines = [
        f"{m.group('indent')}{m.group('vis')}use {m.group('root')}::{render(head, rests)};"
        for head, rests in group(new_items).items()
    ]
    return "\n".join(lines)

path_re = re.compile(r"(?P<root>\$?\bcrate)::(?P<name>[A-Z][A-Za-z_0-9]*)\b")

def fix_code_line(line):
    if line.lstrip().startswith("//"):
        return line
    return path_re.sub(
        lambda m: f"{m.group('root')}::{home[m.group('name')]}" if m.group("name") in home else m.group(0),
        line,
    )

changed = []
for path in sorted(src.rglob("*.rs")):
    if path == src / "lib.rs" or (src / "bin") in path.parents:
        continue
    text = path.read_text()
    new = use_re.sub(fix_use, text)
    # Paths in code, outside `use` statements (already rewritten above).
    out, in_use = [], False
    for line in new.split("\n"):
        if re.match(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s", line):
            in_use = not line.rstrip().endswith(";")
            out.append(line)
            continue
        if in_use:
            in_use = not line.rstrip().endswith(";")
            out.append(line)
            continue
        out.append(fix_code_line(line))
    new = "\n".join(out)
    if new != text:
        changed.append(str(path))
        if not dry_run:
            path.write_text(new)
print(("would change" if dry_run else "rewrote") + f" {len(changed)} file(s)")
for p in changed:
    print("  " + p)
PY
