#!/usr/bin/env python3
"""File-level import graph of one crate: which source file names which module
(`crate::a::b`, `super::x`, `self::x` paths in `use` items and in code), and the
cycles in it. Usage: tools/import_loops.py crates/c3-runtime/src [--graph]
Exit status 1 when there is a cycle. Test modules (`tests.rs`, `#[cfg(test)]`
blocks) are left out: tests may import what they test from anywhere. A module's
use of its own ancestors (`super::x`, `crate::X` re-exported by lib.rs) is not an
edge: a parent declares and re-exports its children; the loops that matter are
between files that are not each other's ancestors."""
import os, re, sys

root = sys.argv[1].rstrip("/")


def module_of(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs") and f != "tests.rs":
            p = os.path.join(d, f)
            files[module_of(p)] = p


def strip_tests(src):
    # Drop `#[cfg(test)] mod x { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", src):
        if m.start() < i:
            continue
        out.append(src[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(src):
            depth += {"{": 1, "}": -1}.get(src[j], 0)
            j += 1
        i = j
    out.append(src[i:])
    return "".join(out)


def resolve(mod, path):
    """The longest known module that `path` (a list of segments) names from `mod`."""
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] == "super":
        base, rest = mod[:-1], path[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif path[0] == "self":
        base, rest = mod, path[1:]
    elif mod + (path[0],) in files:
        # A child module named without `self::` (`use slots::SlotCache`).
        base, rest = mod, path
    else:
        return None
    best = None
    for k in range(len(rest) + 1):
        cand = base + tuple(rest[:k])
        if cand in files:
            best = cand
    return best


edges = {m: set() for m in files}
for mod, p in files.items():
    src = strip_tests(open(p).read())
    src = re.sub(r"//[^\n]*", "", src)
    # Expand `use a::{b, c::{d}}` groups one level at a time into paths.
    paths = re.findall(r"\b\w+(?:::\w+)+", src)
    for g in re.finditer(r"\b(\w+(?:::\w+)*)::\{([^{}]*)\}", src):
        for item in g.group(2).split(","):
            item = item.strip().split(" as ")[0]
            if item:
                paths.append(g.group(1) + "::" + item)
    for s in paths:
        t = resolve(mod, s.split("::"))
        if t is not None and t != mod and t != mod[: len(t)]:
            edges[mod].add(t)

name = lambda m: "::".join(m) or "lib"
if "--graph" in sys.argv:
    for m in sorted(edges):
        print(name(m), "->", ", ".join(sorted(name(t) for t in edges[m])))

# Cycles: strongly connected components with more than one file.
index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = n[0]
    n[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(comp)


sys.setrecursionlimit(10000)
for v in edges:
    if v not in index:
        visit(v)
for c in comps:
    print("cycle:", ", ".join(sorted(name(m) for m in c)))
if not comps:
    print(f"no import cycles among {len(files)} files of {root}")
sys.exit(1 if comps else 0)
