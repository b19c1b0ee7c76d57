#!/usr/bin/env bash
# Fails when a module of vault-secret imports from a higher layer, through the
# crate root (`use crate::Name` where `Name` is a `pub use` of lib.rs), or in
# a circle. The layers are the `# Layers` list of lib.rs's crate docs; nested
# modules (`testing`, `cache`) are checked for circles among their files.
#
#   scripts/check-layers.sh            # check vault-secret
#   scripts/check-layers.sh --graph    # also print each module's imports
#   scripts/check-layers.sh PATH/TO/src  # another crate whose lib.rs has the list
#
# Test code (`#[cfg(test)] mod tests`, `tests.rs`) and the binaries are not
# checked: tests may use anything, and the CLI uses the crate by its name.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import re
import sys
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
show_graph = "--graph" in sys.argv[1:]
src = Path(args[0] if args else "vault-secret/src")
lib = (src / "lib.rs").read_text()

def code_of(text):
    """The text without `#[cfg(test)] mod tests { .. }` (from there to the
    end: test modules close the file here) and without comments."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests\b", text, re.M)
    if m:
        text = text[: m.start()]
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("//"):
            continue
        lines.append(re.sub(r"\s//.*$", "", line))
    return "\n".join(lines)

def split_top(s):
    """Splits `a, b::{c, d}, e` at the commas outside braces."""
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

def first_segments(tree):
    """`{A, b::C, c::{D, E}}` or `b::C` -> the first segment of each path."""
    tree = tree.strip()
    if tree.startswith("{") and tree.endswith("}"):
        out = []
        for part in split_top(tree[1:-1]):
            out.extend(first_segments(part))
        return out
    return [re.split(r"::|\s", tree, maxsplit=1)[0]]

# The modules lib.rs declares, and what its `pub use` lines re-export.
modules = set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;", lib, re.M))
reexports = {}
for stmt in re.findall(r"^\s*pub use\s+([^;]+);", code_of(lib), re.M | re.S):
    stmt = " ".join(stmt.split())
    head, _, rest = stmt.partition("::")
    if head not in modules or not rest:
        continue
    rest = rest.strip()
    names = split_top(rest[1:-1]) if rest.startswith("{") else [rest]
    for name in names:
        name = name.split(" as ")[-1].strip().split("::")[-1]
        reexports[name] = head

# The layer list: lines `N. `a`, `b`` under `//! # Layers`.
layers = {}
section = re.search(r"^//! # Layers\n(.*?)(?=^//! #|^[^/]|\Z)", lib, re.M | re.S)
problems = []
if section is None:
    problems.append(f"{src}/lib.rs has no `//! # Layers` section to check against")
for n, line in enumerate(
    l for l in (section.group(1) if section else "").splitlines() if re.match(r"//!\s*\d+\.", l)
):
    for name in re.findall(r"`([a-z_0-9]+)`", line):
        layers[name] = n

for name in sorted(modules):
    if name not in layers:
        problems.append(f"lib.rs: module `{name}` is in no layer of the `# Layers` list")
for name in sorted(layers):
    if name not in modules:
        problems.append(f"lib.rs: the `# Layers` list names `{name}`, which is no module")

def module_files(name):
    single = src / f"{name}.rs"
    if single.exists():
        return [single]
    return sorted(p for p in (src / name).rglob("*.rs") if p.name != "tests.rs")

def references(text):
    """The first segment after `crate::` of every path in the code, with
    whether it came in a `use` line; grouped `use crate::{..}` expanded."""
    code = code_of(text)
    refs = []
    for stmt in re.findall(r"\buse\s+\$?crate::([^;]+);", code, re.S):
        for seg in first_segments(" ".join(stmt.split())):
            refs.append((seg, True))
    rest = re.sub(r"\buse\s+\$?crate::[^;]+;", "", code, flags=re.S)
    for seg in re.findall(r"\$?\bcrate::([A-Za-z_][A-Za-z_0-9]*)", rest):
        refs.append((seg, False))
    return refs

graph = {}
for name in sorted(modules):
    deps = set()
    for path in module_files(name):
        for seg, in_use in references(path.read_text()):
            if seg in ("self", "super"):
                continue
            target = seg if seg in modules else reexports.get(seg)
            if seg not in modules and target is not None:
                problems.append(
                    f"{path}: `crate::{seg}` goes through the crate root: "
                    f"use `crate::{target}::{seg}`"
                )
            if target is None or target == name:
                continue
            deps.add(target)
            if name in layers and target in layers and layers[target] > layers[name]:
                problems.append(
                    f"{path}: `{name}` (layer {layers[name] + 1}) imports `{target}` "
                    f"from a higher layer ({layers[target] + 1})"
                )
    graph[name] = deps

def cycles(graph):
    """Each circle once, as a list of names."""
    found, state = [], {}
    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found

for circle in cycles(graph):
    problems.append("import circle: " + " -> ".join(circle))

# Nested modules: the files of one directory import each other through
# `super::name`; no circles among them.
for directory in sorted(p for p in src.iterdir() if p.is_dir() and p.name != "bin"):
    files = {p.stem: p for p in directory.glob("*.rs") if p.stem not in ("mod", "tests")}
    sub = {}
    for stem, path in files.items():
        code = code_of(path.read_text())
        deps = set()
        for stmt in re.findall(r"\buse\s+super::([^;]+);", code, re.S):
            deps.update(first_segments(" ".join(stmt.split())))
        deps.update(re.findall(r"\bsuper::([a-z_0-9]+)::", code))
        sub[stem] = {d for d in deps if d in files and d != stem}
    for circle in cycles(sub):
        problems.append(f"{directory.name}: import circle: " + " -> ".join(circle))
    if show_graph:
        for stem in sorted(sub):
            print(f"{directory.name}::{stem} -> {', '.join(sorted(sub[stem])) or '-'}")

if show_graph:
    for name in sorted(graph, key=lambda n: (layers.get(n, 99), n)):
        layer = layers.get(name)
        print(f"[{'?' if layer is None else layer + 1}] {name} -> {', '.join(sorted(graph[name])) or '-'}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    print(f"{len(problems)} layering problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"layers: {len(graph)} modules, no upward import, no import through the crate root, no circle")
PY
