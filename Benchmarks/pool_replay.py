#!/usr/bin/env python3
"""Replays a block-pool trace (FINCH_POOL_TRACE=FILE finch bench ...) against placement rules.

For each rule it prints, per step (the steps after the first repeat the same requests; a step's
length is found from them), the requests that needed new memory and the
MiB the kernel had to populate, then the most resident bytes and the peak of live bytes.

    FINCH_POOL_TRACE=/tmp/r50.trace .build/release/finch bench --model resnet50 --resolution 224 --steps 3 --warmup 1 --train-only
    python3 Benchmarks/pool_replay.py /tmp/r50.trace --steps 4 [--slack-mib 128]

Rules: `sizes`, the cache of whole blocks by size this pool used before 2026-12-07 (past the limit
it cut down a larger cached block or unmapped the largest); `first` and `best`, free ranges of one
address range (lowest that fits, or smallest), the tails of the largest handed back past the limit.
"""
import argparse, bisect, sys
from collections import defaultdict

MiB, PAGE = 1 << 20, 4096


def load(path):
    """(kind, id, length) events; ids pair each release with its request."""
    events, live, next_id = [], {}, 0
    for line in open(path):
        kind, address, length = line.split()[:3]
        if kind == 'a':
            live[address] = next_id
            events.append(('a', next_id, int(length)))
            next_id += 1
        elif address in live:
            events.append(('f', live.pop(address), int(length)))
    return events


def steps(sizes, repeats):
    """(end, p): the last step ends before request `end` and has p requests, p the longest length
    whose last `repeats` runs before `end` are equal (the longest, as parts of a step repeat too:
    a stage's blocks). Requests after the steps (`finch bench`'s sgemm probe) are skipped."""
    for end in range(len(sizes), max(len(sizes) - 256, 0), -1):
        for p in range(end // repeats, 15, -1):
            last = sizes[end - p:end]
            if all(sizes[end - (k + 1) * p:end - k * p] == last for k in range(1, repeats)):
                return end, p
    return 0, 0


class Pool:
    def __init__(self, slack):
        self.live = self.peak = self.new_requests = self.new_bytes = self.resident = self.max_resident = 0
        self.slack = slack

    def limit(self):
        return self.peak + max(self.slack, self.peak // 16)

    def request(self, length):
        self.live += length
        self.peak = max(self.peak, self.live)


class Sizes(Pool):
    def __init__(self, slack):
        super().__init__(slack)
        self.cached, self.cached_bytes = defaultdict(int), 0

    def alloc(self, i, length):
        self.request(length)
        if self.cached[length]:
            self.cached[length] -= 1
            self.cached_bytes -= length
            return
        limit = self.limit()
        if self.live + self.cached_bytes <= limit:
            self.new_requests += 1
            self.new_bytes += length
        else:
            larger = min((s for s, n in self.cached.items() if n and s > length), default=None)
            if larger:
                self.cached[larger] -= 1
                self.cached_bytes -= larger
            while self.live + self.cached_bytes > limit:
                victim = max((s for s, n in self.cached.items() if n), default=None)
                if victim is None:
                    break
                self.cached[victim] -= 1
                self.cached_bytes -= victim
            if not larger:
                self.new_requests += 1
                self.new_bytes += length
        self.max_resident = max(self.max_resident, self.live + self.cached_bytes)

    def free(self, i, length):
        self.live -= length
        self.cached[length] += 1
        self.cached_bytes += length


class Ranges(Pool):
    def __init__(self, slack, fit):
        super().__init__(slack)
        self.free_spans, self.top, self.at, self.fit = [], 0, {}, fit
        self.resident_pages = bytearray()

    def alloc(self, i, length):
        self.request(length)
        fits = [j for j, (a, l) in enumerate(self.free_spans) if l >= length]
        if fits:
            j = fits[0] if self.fit == 'first' else min(fits, key=lambda j: self.free_spans[j][1])
            a, l = self.free_spans[j]
            if l == length:
                del self.free_spans[j]
            else:
                self.free_spans[j] = [a + length, l - length]
        else:
            a = self.free_spans.pop()[0] if self.free_spans and sum(self.free_spans[-1]) == self.top else self.top
            self.top = a + length
            self.resident_pages.extend(bytes(self.top // PAGE - len(self.resident_pages)))
        p0, p1 = a // PAGE, (a + length) // PAGE
        missing = (p1 - p0) - sum(self.resident_pages[p0:p1])
        if missing:
            self.new_requests += 1
            self.new_bytes += missing * PAGE
            self.resident += missing * PAGE
            self.resident_pages[p0:p1] = b'\1' * (p1 - p0)
        self.at[i] = a
        while self.resident > self.limit():
            excess = self.resident - self.limit()
            spans = [s for s in self.free_spans if any(self.resident_pages[s[0] // PAGE:sum(s) // PAGE])]
            if not spans:
                break
            a, l = max(spans, key=lambda s: s[1])
            cut = min(l, -(-excess // PAGE) * PAGE)
            r0 = (a + l - cut) // PAGE
            if not any(self.resident_pages[r0:(a + l) // PAGE]):
                r0 = a // PAGE
            r1 = (a + l) // PAGE
            self.resident -= sum(self.resident_pages[r0:r1]) * PAGE
            self.resident_pages[r0:r1] = bytes(r1 - r0)
        self.max_resident = max(self.max_resident, self.resident)

    def free(self, i, length):
        self.live -= length
        a = self.at.pop(i)
        j = bisect.bisect_left(self.free_spans, [a, 0])
        self.free_spans.insert(j, [a, length])
        if j + 1 < len(self.free_spans) and a + length == self.free_spans[j + 1][0]:
            self.free_spans[j][1] += self.free_spans.pop(j + 1)[1]
        if j > 0 and sum(self.free_spans[j - 1]) == a:
            self.free_spans[j - 1][1] += self.free_spans.pop(j)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('trace')
    ap.add_argument('--steps', type=int, default=4, help='steps the traced run took, warm-up included')
    ap.add_argument('--slack-mib', type=int, default=128, help='the pool\'s minimumSlack')
    args = ap.parse_args()
    events = load(args.trace)
    sizes = [e[2] for e in events if e[0] == 'a']
    if args.steps < 3:
        sys.exit('--steps: trace a run of 3 or more steps (the first differs from the others)')
    end, p = steps(sizes, args.steps - 1)
    if p == 0:
        sys.exit(f'{args.trace}: the last {args.steps - 1} steps do not repeat the same requests')
    cuts = [end - k * p for k in range(args.steps - 1, -1, -1)]
    print(f'{len(sizes)} requests, {p} a step; columns: before the first step, then each step, then after them')
    for name, pool in [('sizes', Sizes(args.slack_mib * MiB)), ('first', Ranges(args.slack_mib * MiB, 'first')),
                       ('best', Ranges(args.slack_mib * MiB, 'best'))]:
        rows, n, last = [], 0, (0, 0)
        for kind, i, length in events:
            if kind == 'f':
                pool.free(i, length)
                continue
            pool.alloc(i, length)
            n += 1
            if n in cuts or n == len(sizes):
                rows.append(f'{pool.new_requests - last[0]} new / {(pool.new_bytes - last[1]) / MiB:.0f} MiB')
                last = (pool.new_requests, pool.new_bytes)
        print(f'{name:6} new memory: {", ".join(rows)}; resident at most {pool.max_resident / MiB:.0f} MiB, live peak {pool.peak / MiB:.0f} MiB')


if __name__ == '__main__':
    main()
