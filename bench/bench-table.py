#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Tables for "make bench" (bench/bench-guest.sh writes the inputs).
#
#   bench-table.py --run RUNS/JOB.DEV.REP.meta
#       one progress line for one fio run; exit 1 if the run failed
#   bench-table.py OUT
#       medians of OUT/runs/*, printed as a markdown table and saved as
#       OUT/results.md, every run in OUT/results.json; exit 1 if no run
#       produced a figure
#
# A run is a fio JSON output (JOB.DEV.REP.json) plus the counters the
# guest script read around it (JOB.DEV.REP.meta, key=value lines): the
# system-wide /proc/stat "cpu" line and the device's sectors read and
# written before and after, and for qcow the L2 cache counters of sysfs.
#
# CPU per I/O is the busy time of all CPUs (user + nice + system + irq +
# softirq + steal) over the whole fio run, ramp included, divided by the
# I/Os the device served in that time (its sectors over the job's block
# size), so that kernel workers and qemu-nbd count, not only fio.

import glob
import json
import os
import statistics
import sys

DEVICES = ("qcow", "loop", "nbd")
JOB_ORDER = ("randread-qd1", "randread-qd32", "randwrite-qd32",
             "randwrite-alloc-qd32", "seqread-1m", "seqwrite-1m",
             "randrw-70-30", "randread-qd32-2jobs", "cache")

# The targets of issue 5: (title, jobs, reference device, minimum ratio).
TARGETS = (
    ("4k random read/write on allocated clusters >= 0.9x loop",
     ("randread-qd1", "randread-qd32", "randwrite-qd32", "randrw-70-30",
      "randread-qd32-2jobs"), "loop", 0.9),
    ("1 MiB sequential read and write >= 0.9x loop",
     ("seqread-1m", "seqwrite-1m"), "loop", 0.9),
    ("4k allocating random write >= 0.5x loop",
     ("randwrite-alloc-qd32",), "loop", 0.5),
    ("every job >= 5x qemu-nbd",
     tuple(j for j in JOB_ORDER if j != "cache"), "nbd", 5.0),
)
SCALING_TARGET = 1.6


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                meta[key] = value
    return meta


def size_bytes(text):
    text = text.strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("kmg")) * mult


def ints(text):
    return [int(x) for x in text.split()]


def load_fio(path):
    """fio's JSON; fio may print notes before it."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in " + path)
    return json.JSONDecoder().raw_decode(text[start:])[0]


def load_run(meta_path):
    m = read_meta(meta_path)
    base = meta_path[:-len(".meta")]
    run = {"job": m.get("job"), "device": m.get("device"),
           "rep": int(m.get("rep", 0)), "dev": m.get("dev"),
           "bs": m.get("bs"), "fio_rc": int(m.get("fio_rc", -1)),
           "ok": False, "error": None,
           "probe_ms": int(m["probe_ms"]) if "probe_ms" in m else None}
    try:
        fio = load_fio(base + ".json")
        jobs = fio["jobs"]
        rd = sum(j["read"]["iops"] for j in jobs)
        wr = sum(j["write"]["iops"] for j in jobs)
        run["read_iops"] = rd
        run["write_iops"] = wr
        run["iops"] = rd + wr
        run["bw_bytes"] = sum(j["read"]["bw_bytes"] + j["write"]["bw_bytes"]
                              for j in jobs)
        run["fio_ios"] = sum(j["read"]["total_ios"] + j["write"]["total_ios"]
                             for j in jobs)
        run["fio_error"] = max(j.get("error", 0) for j in jobs)
        run["fio_runtime_ms"] = max(j["read"]["runtime"] or
                                    j["write"]["runtime"] for j in jobs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        run["error"] = "fio output: %s" % e
        return run

    t0, t1 = (float(x) for x in m["wall"].split())
    c0, c1 = ints(m["cpu_before"]), ints(m["cpu_after"])
    d = [b - a for a, b in zip(c0, c1)]
    # user nice system idle iowait irq softirq steal
    busy = d[0] + d[1] + d[2] + d[5] + d[6] + d[7]
    hz = os.sysconf("SC_CLK_TCK")
    s0, s1 = ints(m["sectors_before"]), ints(m["sectors_after"])
    dev_bytes = (s1[0] - s0[0] + s1[1] - s0[1]) * 512
    bs = size_bytes(run["bs"] or "4k")
    ios = dev_bytes // bs
    run["ios_source"] = "device"
    if ios <= 0:	# no I/O statistics on the device: fio's count
        ios = run["fio_ios"]
        run["ios_source"] = "fio"
    run.update(wall_s=t1 - t0, cpu_busy_ticks=busy, cpu_total_ticks=sum(d),
               clk_tck=hz, ios=ios,
               cpu_us_per_io=busy / hz * 1e6 / ios if ios else None)
    if "cache_hits" in m:
        h0, h1 = ints(m["cache_hits"])
        x0, x1 = ints(m["cache_misses"])
        run.update(cache_size=int(m["cache_size"]),
                   cache_slice_size=int(m["cache_slice_size"]),
                   cache_hits=h1 - h0, cache_misses=x1 - x0)
        lookups = (h1 - h0) + (x1 - x0)
        run["cache_hit_rate"] = (h1 - h0) / lookups if lookups else None

    if run["fio_rc"] != 0 or run["fio_error"]:
        run["error"] = "fio exit %d, error %d" % (run["fio_rc"],
                                                 run["fio_error"])
    elif run["iops"] <= 0:
        run["error"] = "no I/O"
    else:
        run["ok"] = True
    return run


def is_1m(job):
    return job.endswith("-1m")


def fmt_value(job, v):
    if v is None:
        return "-"
    if is_1m(job):
        return "%.1f" % (v / 1e6)
    return "{:,.0f}".format(v)


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def fmt_cpu(v):
    return "%.1f" % v if v is not None else "-"


def mib(n):
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift:
            return "%g %s" % (n / (1 << shift), unit)
    return "%d bytes" % n


def median(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(runs):
    summary = {}
    for r in runs:
        if r["ok"]:
            summary.setdefault(r["job"], {}).setdefault(r["device"], []).append(r)
    out = {}
    for job, devs in summary.items():
        out[job] = {}
        for dev, rs in devs.items():
            value_key = "bw_bytes" if is_1m(job) else "iops"
            vals = [r[value_key] for r in rs]
            s = {"runs": len(rs), "iops": median(rs, "iops"),
                 "min": min(vals), "max": max(vals),
                 "bw_bytes": median(rs, "bw_bytes"),
                 "value": median(rs, value_key),
                 "cpu_us_per_io": median(rs, "cpu_us_per_io")}
            if job == "cache":
                s["cache_hit_rate"] = median(rs, "cache_hit_rate")
                s["cache_hits"] = sum(r["cache_hits"] for r in rs)
                s["cache_misses"] = sum(r["cache_misses"] for r in rs)
                s["cache_size"] = rs[0]["cache_size"]
                s["cache_slice_size"] = rs[0]["cache_slice_size"]
            out[job][dev] = s
    return out


def value(summary, job, dev):
    return summary.get(job, {}).get(dev, {}).get("value")


def targets(summary):
    lines, results = [], []
    for title, jobs, ref, want in TARGETS:
        for job in jobs:
            q, r = value(summary, job, "qcow"), value(summary, job, ref)
            if q is None or not r:
                continue
            ratio = q / r
            met = ratio >= want
            results.append({"target": title, "job": job, "ratio": ratio,
                            "want": want, "met": met})
            lines.append("- %s: %s qcow/%s %.2fx (want >= %gx)" %
                         ("met" if met else "MISSED", job, ref, ratio, want))
    one = value(summary, "randread-qd32", "qcow")
    two = value(summary, "randread-qd32-2jobs", "qcow")
    if one and two is not None:
        ratio = two / one
        met = ratio >= SCALING_TARGET
        results.append({"target": "2 jobs >= 1.6x 1 job", "job":
                        "randread-qd32-2jobs", "ratio": ratio,
                        "want": SCALING_TARGET, "met": met})
        lines.append("- %s: qcow randread-qd32-2jobs / randread-qd32 %.2fx "
                     "(want >= %gx)" % ("met" if met else "MISSED", ratio,
                                        SCALING_TARGET))
    return lines, results


def runs_text(meta):
    """How many runs each device had, as in "13 runs (3 on nbd)"."""
    rep, nbd = meta.get("repeat"), meta.get("nbd_repeat", meta.get("repeat"))
    text = "%s run%s" % (rep, "" if rep == "1" else "s")
    return text if nbd == rep else "%s (%s on nbd)" % (text, nbd)


def spread(meta, runs, summary, jobs):
    """The lowest and highest run of each job, and how fast the host was."""
    out = ["", "Spread, lowest-highest, of %s:" % runs_text(meta),
           "", "| job | qcow | loop | nbd |", "| --- | ---: | ---: | ---: |"]
    for job in jobs:
        cell = []
        for d in DEVICES:
            s = summary[job].get(d)
            cell.append("%s-%s" % (fmt_value(job, s["min"]),
                                   fmt_value(job, s["max"])) if s else "-")
        out.append("| %s | %s | %s | %s |" % (job, *cell))
    probes = sorted(r["probe_ms"] for r in runs if r["probe_ms"] is not None)
    if probes:
        out += ["", "Host speed: a fixed CPU-bound task before each run took "
                "%d ms (median), %d-%d ms over %d runs. Only the ratios "
                "between devices in one boot mean anything." %
                (statistics.median(probes), probes[0], probes[-1],
                 len(probes))]
    return out


def table(meta, runs, summary):
    rt, ramp = meta.get("runtime"), meta.get("ramp")
    mem = int(meta.get("mem_kib", 0)) // 1024
    size = int(meta.get("size", 0))
    out = ["# qcow2.ko benchmark", ""]
    out.append("- kernel %s, %s vCPUs (QEMU TCG guest), %d MiB RAM, %s" %
               (meta.get("kernel"), meta.get("cpus"), mem, meta.get("date")))
    out.append("- %s, %s, %s" % (meta.get("fio"), meta.get("qemu_nbd"),
                                 meta.get("qemu_img")))
    out.append("- devices: qcow = `qcowctl attach` of a qcow2 image "
               "(%s clusters, fully allocated, %s); loop = `losetup "
               "--direct-io=off` of a raw file with the same data; nbd = "
               "`qemu-nbd -c -f qcow2 --cache=writeback` of the same image" %
               (mib(int(meta.get("cluster_size", 0))), mib(size)))
    out.append("- image cache mode: %s for all three (images on %s, "
               "which has no O_DIRECT)" % (meta.get("cache_mode"),
                                           meta.get("image_fs")))
    out.append("- fio: libaio, direct=1 on the device, %s s ramp + %s s per "
               "run; median of %s, devices interleaved" %
               (ramp, rt, runs_text(meta)))
    out.append("- CPU µs/IO: busy time of all CPUs (/proc/stat user+nice+"
               "system+irq+softirq+steal) during the fio run over the I/Os "
               "the device served")
    if meta.get("default_cache"):
        cs, sl = (int(x) for x in meta["default_cache"].split())
        cover = cs // 8 * int(meta.get("cluster_size", 65536))
        out.append("- default L2 cache per device: %s (sysfs cache_size of a "
                   "default attach, module parameter l2_cache_size=%s), "
                   "%s slices, enough for %s of disk" %
                   (mib(cs), meta.get("l2_cache_size_param", "?"), mib(sl),
                    mib(cover)))
    out.append("")
    out.append("| job | qcow | loop | nbd | qcow/loop | qcow/nbd "
               "| CPU µs/IO qcow | loop | nbd |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    jobs = [j for j in JOB_ORDER if j in summary and j != "cache"]
    jobs += sorted(j for j in summary if j not in JOB_ORDER)
    for job in jobs:
        s = summary[job]
        v = {d: s.get(d, {}).get("value") for d in DEVICES}
        cpu = {d: s.get(d, {}).get("cpu_us_per_io") for d in DEVICES}
        out.append("| %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            job, "MB/s" if is_1m(job) else "IOPS",
            fmt_value(job, v["qcow"]), fmt_value(job, v["loop"]),
            fmt_value(job, v["nbd"]), fmt_ratio(v["qcow"], v["loop"]),
            fmt_ratio(v["qcow"], v["nbd"]), fmt_cpu(cpu["qcow"]),
            fmt_cpu(cpu["loop"]), fmt_cpu(cpu["nbd"])))
    out += spread(meta, runs, summary, jobs)
    c = summary.get("cache", {}).get("qcow")
    if c:
        img = [r for r in runs if r["job"] == "cache" and r["ok"]]
        cover = c["cache_size"] // 8 * int(meta.get("cluster_size", 65536))
        rate = c["cache_hit_rate"]
        out.append("")
        out.append("cache (qcow only, 4k random read iodepth 32 over the whole "
                   "device, L2 cache %s = %d slices of %s covering %s): "
                   "%s IOPS, CPU %s µs/IO, L2 hit rate %s "
                   "(%d hits, %d misses in %d run%s)" % (
                       mib(c["cache_size"]),
                       c["cache_size"] // c["cache_slice_size"],
                       mib(c["cache_slice_size"]), mib(cover),
                       fmt_value("cache", c["value"]),
                       fmt_cpu(c["cpu_us_per_io"]),
                       "%.1f%%" % (100 * rate) if rate is not None else "-",
                       c["cache_hits"], c["cache_misses"], len(img),
                       "" if len(img) == 1 else "s"))
    lines, _ = targets(summary)
    if lines:
        out += ["", "Targets (issue 5; informational):", ""] + lines
    failed = [r for r in runs if not r["ok"]]
    if failed:
        out += ["", "Failed runs:", ""]
        out += ["- %s on %s, rep %d: %s" % (r["job"], r["device"], r["rep"],
                                            r["error"]) for r in failed]
    return "\n".join(out) + "\n"


def one_run(meta_path):
    r = load_run(meta_path)
    where = "%s on %s (%s), rep %d" % (r["job"], r["device"], r["dev"],
                                       r["rep"])
    if not r["ok"]:
        print("# bench: %s FAILED: %s" % (where, r["error"]))
        return 1
    extra = ""
    if r.get("cache_hit_rate") is not None:
        extra = ", L2 hit rate %.1f%%" % (100 * r["cache_hit_rate"])
    print("# bench: %s: %s IOPS, %.1f MB/s, CPU %s µs/IO%s" %
          (where, fmt_value("x", r["iops"]), r["bw_bytes"] / 1e6,
           fmt_cpu(r["cpu_us_per_io"]), extra))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--run":
        return one_run(argv[2])
    if len(argv) != 2:
        sys.stderr.write("usage: bench-table.py OUT | --run META\n")
        return 2
    out = argv[1]
    meta = read_meta(os.path.join(out, "runs", "bench.meta"))
    runs = [load_run(p) for p in
            sorted(glob.glob(os.path.join(out, "runs", "*.*.*.meta")))]
    summary = summarize(runs)
    text = table(meta, runs, summary)
    _, target_results = targets(summary)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "summary": summary,
                   "targets": target_results, "runs": runs}, f, indent=1)
        f.write("\n")
    sys.stdout.write(text)
    return 0 if any(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
