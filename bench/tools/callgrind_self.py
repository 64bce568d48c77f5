"""Self cost per function from a callgrind dump (bench/instructions.sh).

callgrind_annotate attributes everything to `clone` for a binary without debug info; this
sums the cost lines of each function, leaving out the inclusive costs of the calls it makes.
Usage: callgrind_self.py DUMP REQUESTS [TOP]
"""

import collections
import re
import sys

path, requests = sys.argv[1], int(sys.argv[2])
top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
names = {}
cost = collections.Counter()
function = None
after_call = False
for line in open(path):
    line = line.rstrip("\n")
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3)
        if m.group(1) == "fn":
            function = names.get(m.group(2), m.group(2))
        continue
    if line.startswith("calls="):
        after_call = True  # the next cost line is the callee's inclusive cost
        continue
    if line and (line[0].isdigit() or line[0] in "+-*"):
        parts = line.split()
        if len(parts) >= 2:
            if after_call:
                after_call = False
            else:
                cost[function] += int(parts[1])
total = sum(cost.values())
print(f"instructions per request: {total // requests} ({total} for {requests} requests)")
for name, value in cost.most_common(top):
    print(f"{value / requests:9.0f} {100 * value / total:5.1f}%  {name}")
