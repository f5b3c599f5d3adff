"""Heap at its peak by allocation site, from `heaptrack_print --flamegraph-cost-type peak -F`.

usage: heap_sites.py STACKS REQUESTS   (bench/profile.sh memory runs it)

Each stack (frames root;...;leaf, then the bytes) is put in the first group whose marker it
contains; bytes are divided by REQUESTS, the requests waiting at the peak.
"""
import collections
import sys

GROUPS = [
    ("hyper: connection read and write buffers", ["poll_read_from_io", "new<> (io.rs)"]),
    ("hyper: the boxed service future (per request in flight)", ["new<> (dispatch.rs)"]),
    ("daemon: a running DB call's future (boxed in Db::observe)", ["observe<> (db.rs)"]),
    ("daemon: the request task's future (boxed in Instrumented::new)", ["spawn (async_rt.rs)"]),
    ("daemon: the request's Tracker (Arc)", ["new (measure.rs)"]),
    ("tokio: task cells (connection task; request task)", ["bind_new_task"]),
    ("tokio: socket registrations", ["registration_set.rs"]),
    ("hyper: header maps", ["parse_headers"]),
    ("mongodb driver: connections", ["cmap", "pooled.rs", "establish"]),
    ("bson documents, driver operations", ["(document.rs)", "executor.rs", "bson", "find.rs"]),
]


def main():
    path, requests = sys.argv[1], float(sys.argv[2])
    totals = collections.Counter()
    for line in open(path):
        stack, _, cost = line.rstrip("\n").rpartition(" ")
        group = next((g for g, marks in GROUPS if any(m in stack for m in marks)), "other")
        totals[group] += int(cost)
    for group, cost in totals.most_common():
        print(f"{cost / 1e6:8.2f} MB {cost / requests:7.0f} B/request  {group}")
    print(f"{sum(totals.values()) / 1e6:8.2f} MB {sum(totals.values()) / requests:7.0f} B/request  total")


main()
