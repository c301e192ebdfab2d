#!/usr/bin/env python3
"""tests/trio_diff.py: the random programs of tests/check_random, run on
Python Trio, compared with ptrio's reference model and with ptrio.

    python3 tests/trio_diff.py BUILD/tests/check_random SEED COUNT [SCHEDULES]

check_random --python writes each program as a Trio program that logs the
same events; check_random --results prints what the model and ptrio did.
Each program runs on Trio with FIFO batches and SCHEDULES-1 random ones
(default 3 in all): a program whose result depends on the schedule is
racy and skipped. Programs the model finds deadlocked are skipped (Trio
would wait forever), and so are those that differ only after a TRY missed
a real failure grouped with a Cancelled, where ptrio documents that it
differs (README, "Differences from Trio": its TRY_BLOCK catches the
failure). Prints the programs where the model and Trio differ, then
counts.

Uses whichever `trio` Python imports (set PYTHONPATH to try another one);
the semantics the model follows are current Trio's (git main). Forcing FIFO
order reaches into trio._core._run (a private detail): a development tool,
not part of `make check`.
"""
import importlib.util
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections import Counter


def parse_results(text):
    """check_random --results output -> {seed: {...}}."""
    res, cur, side = {}, None, None
    for line in text.splitlines():
        if line.startswith('seed '):
            w = line.split()
            cur = {'racy': int(w[3]), 'deadlock': int(w[5]), 'model': {},
                   'ptrio': {}}
            res[int(w[1])] = cur
        elif line.strip() in ('model', 'ptrio'):
            side = line.strip()
        elif line.startswith('  task f'):
            k, v = line[len('  task f'):].split(':', 1)
            cur[side][int(k)] = v.strip()
        elif line.startswith('  rc '):
            cur[side]['rc'] = line.split(None, 4)[3]
    return res


class Hang(Exception):
    pass


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    exe, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    nsched = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    out = subprocess.run([exe, '--results', str(seed), str(count)],
                         capture_output=True, text=True).stdout
    res = parse_results(out)
    py = subprocess.run([exe, '--python', str(seed), str(count)],
                        capture_output=True, text=True, check=True).stdout
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
        f.write(py)
        path = f.name
    spec = importlib.util.spec_from_file_location('randprogs', path)
    progs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(progs)
    os.unlink(path)
    import trio
    import trio._core._run as trio_run

    hung = [False]

    def alarm(*_):
        # Raised inside trio.run, this comes out as TrioInternalError,
        # which the twin's run() reports as an outcome: the flag tells.
        hung[0] = True
        raise Hang()
    signal.signal(signal.SIGALRM, alarm)

    doc = [False]   # the last run met the documented TRY difference

    def run(s, k):
        # Trio pops each batch from its end, reversed half the time:
        # random() always 0 means always reversed, so FIFO.
        if k == 0:
            trio_run._r.random = lambda: 0.0
        else:
            trio_run._r.random = random.Random(k * 7919 + s).random
        hung[0] = False
        signal.alarm(5)
        try:
            logs, rc = getattr(progs, 'prog_%d' % s)()
        except Hang:
            return None
        finally:
            signal.alarm(0)
        if hung[0]:
            return None
        d = {k: ' '.join(v) for k, v in logs.items()}
        d['rc'] = rc
        doc[0] = bool(progs.DOC)
        return d

    def fmt(d):
        return '\n'.join('    %s: %s' % (k, d[k]) for k in sorted(d, key=str))

    stats, shown = Counter(), 0
    for s in range(seed, seed + count):
        r = res[s]
        if r['deadlock']:
            stats['deadlocked (skipped)'] += 1
            continue
        t0 = run(s, 0)
        doc0 = doc[0]
        if t0 is None:
            stats['Trio hangs, the model does not'] += 1
            print('seed %d: Trio hangs' % s)
            continue
        if any(run(s, k) != t0 for k in range(1, nsched)):
            stats['racy on Trio (skipped)'] += 1
            continue
        if r['racy']:
            stats['racy on the model only (skipped)'] += 1
            continue
        if t0 == r['model']:
            stats['model == Trio'] += 1
        elif doc0:
            stats['TRY and a grouped Cancelled, documented (skipped)'] += 1
            continue
        else:
            stats['MODEL != TRIO'] += 1
            if shown < 10:
                shown += 1
                print('seed %d: the model and Trio differ\n  Trio:\n%s\n'
                      '  model:\n%s\n' % (s, fmt(t0), fmt(r['model'])))
        stats['ptrio == Trio' if t0 == r['ptrio'] else 'ptrio != Trio'] += 1
    print('Trio %s' % trio.__version__)
    for k, v in sorted(stats.items()):
        print('%7d  %s' % (v, k))
    sys.exit(1 if stats['MODEL != TRIO'] else 0)


if __name__ == '__main__':
    main()
