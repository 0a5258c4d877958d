"""Links between the project's pages: every relative link in README.md and docs/*.md points at a
file that exists, every #anchor at a heading of that page (GitHub's slug rule), and no file of
the project points outside the repository (a clone is all a user has).

Usage: check_doc_links.py REPO_ROOT
"""
import os
import re
import subprocess
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)  # GitHub drops punctuation, keeps word characters, - and spaces
    return s.replace(" ", "-")


def anchors(path):
    out = set()
    in_code = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def main():
    root = sys.argv[1]
    pages = [os.path.join(root, "README.md")] + sorted(
        os.path.join(root, "docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))
    problems = []
    checked = 0
    for page in pages:
        text = open(page, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are not links
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
                continue
            checked += 1
            file_part, _, anchor = target.partition("#")
            dest = page if not file_part else os.path.normpath(os.path.join(os.path.dirname(page), file_part))
            rel = os.path.relpath(page, root)
            if not os.path.exists(dest):
                problems.append(f"{rel}: link to {target}: no such file")
            elif not os.path.realpath(dest).startswith(os.path.realpath(root) + os.sep):
                problems.append(f"{rel}: link to {target} leaves the repository")
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                problems.append(f"{rel}: link to {target}: no heading with that anchor")
    outside = "../" + "shared"  # the developers' design folder, next to a checkout but not in it
    tracked = subprocess.run(["git", "-C", root, "grep", "-l", "-F", "-e", outside, "--", ".", ":!.ci"],
                             capture_output=True, text=True).stdout.split()
    problems += [f"{t}: cites {outside}, which is outside the repository" for t in tracked]
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"{checked} links in {len(pages)} pages resolve; nothing cites a path outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
