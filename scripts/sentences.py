"""Real English sentences that ship with every Python: the docstrings of the standard
library, split into sentences (deterministic order). The text for calibrating and judging
text models without downloads."""
import importlib
import re
import sys

MODULES = ["argparse", "asyncio", "calendar", "collections", "csv", "datetime", "decimal",
           "difflib", "email", "fractions", "ftplib", "functools", "gzip", "heapq", "html",
           "http.client", "imaplib", "inspect", "ipaddress", "json", "logging", "mailbox",
           "multiprocessing", "pathlib", "pickle", "queue", "random", "re", "shutil", "smtplib",
           "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "tempfile",
           "textwrap", "threading", "tkinter", "turtle", "typing", "unittest", "urllib.request",
           "uuid", "wave", "xml.dom.minidom", "zipfile"]


def sentences(n, skip=0):
    """`n` sentences of 8 to 40 words, after skipping the first `skip`."""
    out = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        docs = [mod.__doc__ or ""]
        for attr in sorted(dir(mod)):
            doc = getattr(getattr(mod, attr, None), "__doc__", None)
            docs.append(doc if isinstance(doc, str) else "")
        for doc in docs:
            text = re.sub(r"\s+", " ", doc)
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
                words = s.split()
                if 8 <= len(words) <= 40 and s.endswith(".") and ">>>" not in s:
                    out.append(s)
    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    if len(unique) < skip + n:
        sys.exit(f"only {len(unique)} sentences in the standard library docstrings")
    return unique[skip:skip + n]


if __name__ == "__main__":
    for s in sentences(5):
        print(s)
