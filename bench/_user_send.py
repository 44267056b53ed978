"""What a user would write instead of ``hpgfast send --file``: the yardstick of bench_cli_send.

``python bench/_user_send.py URL LOGIN FILE`` (the password in ``HPGFAST_PASSWORD``):
reads the CSV (``address,text,subject,client_id``) with the ``csv`` module, makes
``Message``s and sends them with ``Client.send``, 5,000 at a time (the command's
``--chunk``: a file of millions cannot be one list). It checks nothing beyond what
the client checks and looks at no result but their number, so it is the leanest
script that does the job: the command, which checks the whole file first and counts
every outcome, is measured against it.
"""

from __future__ import annotations

import csv
import os
import sys

from hpgfast import Client, Message


def main() -> int:
    url, login, path = sys.argv[1:4]
    results = 0
    with Client(url, login, os.environ["HPGFAST_PASSWORD"]) as client, \
            open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)  # the header
        batch = []
        for address, text, subject, client_id in reader:
            batch.append(Message(address, text, subject, client_id))
            if len(batch) == 5000:
                results += len(client.send(batch))
                batch = []
        if batch:
            results += len(client.send(batch))
    print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
