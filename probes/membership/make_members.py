#!/usr/bin/env python3
"""Write probes/membership/members.json: the member documents of default.json.

Members are 60 modules of the CPython 3.11 standard library, read at run time from the local
Python install (`sysconfig.get_paths()["stdlib"]`); the repository keeps only their paths and
the SHA-256 of the 3.11.7 files (a different patch release changes a few files: Headlight
warns and goes on). Every module is at least 10 KB, so each document fills the default
2,000-token budget, like the non-members.

Usage: python3 probes/membership/make_members.py   (needs Python 3.11)
"""
import hashlib
import json
import os
import sys
import sysconfig

MODULES = """
argparse.py ast.py calendar.py collections/__init__.py configparser.py contextlib.py csv.py
dataclasses.py datetime.py _pydecimal.py difflib.py dis.py doctest.py email/message.py
email/feedparser.py enum.py ftplib.py functools.py gzip.py http/client.py http/server.py
http/cookiejar.py inspect.py ipaddress.py json/decoder.py logging/__init__.py
logging/handlers.py mailbox.py multiprocessing/pool.py optparse.py pathlib.py pdb.py pickle.py
platform.py posixpath.py pprint.py random.py re/_parser.py shutil.py socket.py socketserver.py
statistics.py subprocess.py tarfile.py tempfile.py textwrap.py threading.py tokenize.py
traceback.py typing.py unittest/case.py urllib/parse.py urllib/request.py uuid.py warnings.py
weakref.py zipfile.py asyncio/base_events.py asyncio/tasks.py xml/dom/minidom.py
""".split()


def main():
    if sys.version_info[:2] != (3, 11):
        print(f"warning: Python {sys.version.split()[0]}, the set is defined on 3.11", file=sys.stderr)
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for m in MODULES:
        data = open(os.path.join(root, m), "rb").read()
        files.append({"path": m, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    out = {
        "description": "Members: CPython 3.11 standard-library modules (python/cpython, PSF license), "
                       "read from the local Python install; hashes of Python "
                       + sys.version.split()[0] + ". Written by make_members.py.",
        "root": "{python-stdlib}",
        "python_version": sys.version.split()[0],
        "files": files,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "members.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{len(files)} members -> {path}")


if __name__ == "__main__":
    main()
