"""Bring a new notebook bundle into the user's notebook folder without overwriting their work.

Run by the OnStart script at every start, as the notebook's user, after ``aws s3 sync`` has
mirrored the bucket's ``notebooks/`` into a pristine copy. Syncing into the user's folder itself
would overwrite every notebook they edited whenever the sizes differ (the AWS CLI's ``s3 sync``
downloads a file whose size or time differs), at every start. Instead, file by file (sha256):

- missing from the folder: copied (a new file, or one the user deleted: deleting a file and
  restarting is how to get the bundle's version back);
- unchanged since the last bundle delivered it (the manifest's hash): replaced by the new one;
- changed by the user: kept; the report names the pristine copy beside it;
- no longer in the bundle: removed if the user never changed it (a stale module must not stay
  importable beside the package), kept and reported otherwise.

The manifest (path -> sha256 as last delivered) lives outside the folder; a missing or
unreadable one counts as "nothing delivered", so every differing file is kept, never lost.
Standard library only, Python 3.7 (the instance's system python3 on AL2).

    python3 bundle_update.py PRISTINE FOLDER MANIFEST
"""

import hashlib
import json
import os
import shutil
import sys

REPORT = "bundle-update.txt"  # in FOLDER, rewritten at every start: what this run did


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(root):
    """relative path -> sha256 of every file under ``root``."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root).replace(os.sep, "/")] = sha256(path)
    return out


def _safe(rel):
    return not rel.startswith("/") and ".." not in rel.split("/")


def _write_whole(path, write):
    """Write through a temporary file beside ``path``: nothing half-written."""
    temporary = path + ".partial"
    write(temporary)
    os.replace(temporary, path)


def update(pristine, folder, manifest):
    """Apply the bundle in ``pristine`` to ``folder``; returns the report's lines."""
    try:
        with open(manifest) as fh:
            delivered = json.load(fh)
    except (OSError, ValueError):
        delivered = {}
    bundle = bundle_files(pristine)
    now, lines, counts = {}, [], {"added": 0, "updated": 0, "kept": 0, "removed": 0}
    for rel, new in sorted(bundle.items()):
        target = os.path.join(folder, rel)
        source = os.path.join(pristine, rel)
        if os.path.isdir(target):
            lines.append(f"kept your folder {rel}; the bundle's file is {source}")
            counts["kept"] += 1
            continue
        current = sha256(target) if os.path.exists(target) else None
        if current == new:
            now[rel] = new
            continue
        if current is None or current == delivered.get(rel):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _write_whole(target, lambda tmp, s=source: shutil.copyfile(s, tmp))
            action = "added" if current is None else "updated"
            lines.append(f"{action} {rel}")
            counts[action] += 1
            now[rel] = new
        else:  # the user's work: never overwritten
            lines.append(f"kept your {rel}; the bundle's new version is {source}")
            counts["kept"] += 1
            if rel in delivered:
                now[rel] = delivered[rel]
    for rel, old in sorted(delivered.items()):
        target = os.path.join(folder, rel)
        if rel in bundle or not _safe(rel) or not os.path.isfile(target):
            continue
        if sha256(target) == old:
            os.remove(target)
            lines.append(f"removed {rel} (no longer in the bundle, never changed)")
            counts["removed"] += 1
        else:
            lines.append(f"kept your {rel} (no longer in the bundle)")
            counts["kept"] += 1
    _write_whole(manifest, lambda tmp: _dump(now, tmp))
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    return [f"notebook bundle: {summary}", *lines]


def _dump(data, path):
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


def _text(text, path):
    with open(path, "w") as fh:
        fh.write(text)


def main(argv):
    pristine, folder, manifest = argv[1:4]
    if not any(files for _, _, files in os.walk(pristine)):
        print(f"notebook bundle: {pristine} is empty; {folder} left as it is")
        return 0
    os.makedirs(folder, exist_ok=True)
    lines = update(pristine, folder, manifest)
    _write_whole(os.path.join(folder, REPORT), lambda tmp: _text("\n".join(lines) + "\n", tmp))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
