#!/usr/bin/env python3
"""Vector index benchmark for Engram's embedded store.

Compares, on synthetic 384-dim clustered unit vectors (the all-MiniLM-L6-v2
dimension):

  numpy-f32 / numpy-i8      exact brute force over an in-memory matrix (floor)
  sqlitevec-f32 / -i8       sqlite-vec vec0 virtual table (brute-force KNN, in the SQLite file)
  usearch-f32 / -i8         usearch HNSW, derived index file (i8 = our per-vector scaled int8)
  usearch-i8naive           usearch HNSW fed float32 and left to cast to i8 itself (x*127)
  hnswlib-f32               hnswlib HNSW (no int8 support)
  usearch-exact-f32 / -i8   exact SIMD brute force, usearch.index.search(matrix, q, exact=True),
                            over an in-memory matrix (no index; -t2 = 2 threads per query)

Measured per size: build time (insert/add + persist), p50/p95 single-query
latency (top-10), bytes per vector on disk, recall@10 against exact float32
brute force. A filtered section measures user-scoped search (N vectors, U users).

Usage (each method writes one JSON line to --out; the table is printed at the end):

    python research/vector_index.py --sizes 10000,100000,1000000
    python research/vector_index.py --sizes 100000 --methods usearch-i8,sqlitevec-i8 --filtered 0
    python research/vector_index.py --render results.jsonl      # only print the table

Needs: numpy, sqlite-vec, usearch, hnswlib (optional), and a SQLite driver that
can load extensions (stdlib sqlite3 if built with it, else pysqlite3 or apsw).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

K = 10
ALL_METHODS = [
    "numpy-f32",
    "numpy-i8",
    "sqlitevec-f32",
    "sqlitevec-i8",
    "usearch-f32",
    "usearch-i8",
    "usearch-i8naive",
    "hnswlib-f32",
    "usearch-exact-f32",
    "usearch-exact-i8",
    "usearch-exact-i8-t2",
]


# --------------------------------------------------------------------------- data
def make_data(n: int, dim: int, clusters: int, seed: int, n_queries: int):
    """Gaussian mixture on the sphere with a shared 'anisotropy' direction.

    x = normalize(0.35*g + c_k + e), g and c_k unit vectors, e ~ N(0, I/dim).
    Gives within-cluster cosine ~0.5 and between-cluster cosine ~0.06, roughly
    like sentence embeddings (topics + a common offset).
    Queries are fresh draws from the same mixture (not members of the data).
    """
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(dim).astype(np.float32)
    g /= np.linalg.norm(g)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        step = 100_000
        for s in range(0, m, step):
            e = min(m, s + step)
            lab = rng.integers(0, clusters, e - s)
            x = centers[lab] + 0.35 * g
            x += rng.standard_normal((e - s, dim), dtype=np.float32) / np.sqrt(dim)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[s:e] = x
        return out

    return draw(n), draw(n_queries)


def quantize_i8(x: np.ndarray) -> np.ndarray:
    """Per-vector symmetric int8: round(x * 127 / max|x|). Cosine is scale invariant,
    so no scale needs to be stored for cosine ranking."""
    m = np.abs(x).max(axis=1, keepdims=True)
    m[m == 0] = 1
    return np.clip(np.rint(x * (127.0 / m)), -127, 127).astype(np.int8)


def exact_topk(x: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    """Exact float32 cosine top-k ids (rows of x are unit vectors)."""
    res = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), 64):
        sims = x @ q[s : s + 64].T  # (n, b)
        idx = np.argpartition(-sims, k, axis=0)[:k].T  # (b, k)
        for j, row in enumerate(idx):
            order = np.argsort(-sims[row, j])
            res[s + j] = row[order]
    return res


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hit = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=False))
    return hit / (len(truth) * truth.shape[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[i]


def time_queries(fn, queries, warm: int = 5):
    for q in queries[:warm]:
        fn(q)
    lat, out = [], []
    for q in queries:
        t = time.perf_counter()
        ids = fn(q)
        lat.append((time.perf_counter() - t) * 1000)
        out.append(list(ids))
    return out, lat


def dir_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


# --------------------------------------------------------------------------- sqlite
def sqlite_connect(path: str):
    """Return (conn, driver_name) for a SQLite driver that can load sqlite-vec."""
    import sqlite3

    import sqlite_vec

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        c = sqlite3.connect(path, isolation_level=None)
        c.enable_load_extension(True)
        sqlite_vec.load(c)
        c.enable_load_extension(False)
        return c, f"sqlite3 {sqlite3.sqlite_version}"
    try:
        import pysqlite3.dbapi2 as s3  # type: ignore

        c = s3.connect(path, isolation_level=None)
        c.enable_load_extension(True)
        sqlite_vec.load(c)
        c.enable_load_extension(False)
        return c, f"pysqlite3 {s3.sqlite_version}"
    except ImportError:
        pass
    import apsw  # type: ignore

    c = apsw.Connection(path)
    c.enable_load_extension(True)
    c.load_extension(sqlite_vec.loadable_path())
    c.enable_load_extension(False)
    return c, f"apsw {apsw.sqlite_lib_version()}"


def sv_build(path, x, dtype, users=None, filter_kind="partition", chunk_size=None, cap=600):
    """Create a vec0 table and insert x (ids 1..n). Returns conn, seconds, rows inserted."""
    c, drv = sqlite_connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    col = "float" if dtype == "f32" else "int8"
    extra = ""
    if users is not None:
        extra = (
            ", user_id integer partition key" if filter_kind == "partition" else ", user_id integer"
        )
    opts = f", chunk_size={chunk_size}" if chunk_size else ""
    c.execute(
        f"create virtual table v using vec0(id integer primary key{extra}, "
        f"embedding {col}[{x.shape[1]}] distance_metric=cosine{opts})"
    )
    data = x if dtype == "f32" else quantize_i8(x)
    val = "?" if dtype == "f32" else "vec_int8(?)"
    if users is None:
        sql = f"insert into v(id, embedding) values (?, {val})"
    else:
        sql = f"insert into v(id, user_id, embedding) values (?, ?, {val})"
    t0 = time.perf_counter()
    done = 0
    step = 10_000
    for s in range(0, len(data), step):
        e = min(len(data), s + step)
        if users is None:
            rows = [(i + 1, data[i].tobytes()) for i in range(s, e)]
        else:
            rows = [(i + 1, int(users[i]), data[i].tobytes()) for i in range(s, e)]
        c.execute("begin")
        c.executemany(sql, rows)
        c.execute("commit")
        done = e
        if time.perf_counter() - t0 > cap:
            break
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return c, time.perf_counter() - t0, done, drv


def sv_query_fn(c, dtype, with_user=False):
    val = "?" if dtype == "f32" else "vec_int8(?)"
    if with_user:
        sql = f"select id from v where embedding match {val} and k = {K} and user_id = ?"
    else:
        sql = f"select id from v where embedding match {val} and k = {K}"

    def enc(q):
        return q.tobytes() if dtype == "f32" else quantize_i8(q[None])[0].tobytes()

    if with_user:
        return lambda qu: [r[0] - 1 for r in c.execute(sql, (enc(qu[0]), int(qu[1])))]
    return lambda q: [r[0] - 1 for r in c.execute(sql, (enc(q),))]


# --------------------------------------------------------------------------- methods
def run_method(method, x, queries, truth, tmp, args):
    n, dim = x.shape
    row = {"method": method, "n": n}
    path = os.path.join(tmp, f"{method}-{n}")
    cap = args.build_cap
    if method == "numpy-f32":
        t0 = time.perf_counter()
        m = np.ascontiguousarray(x)
        np.save(path + ".npy", m)
        row["build_s"] = time.perf_counter() - t0
        row["bytes"] = os.path.getsize(path + ".npy")
        row["built"] = n

        def fn(q):
            s = m @ q
            idx = np.argpartition(-s, K)[:K]
            return idx[np.argsort(-s[idx])]

        found, lat = time_queries(fn, queries)
    elif method == "numpy-i8":
        t0 = time.perf_counter()
        m = quantize_i8(x)
        inv = (1.0 / np.linalg.norm(m.astype(np.float32), axis=1)).astype(np.float32)
        np.save(path + ".npy", m)
        np.save(path + ".inv.npy", inv)
        row["build_s"] = time.perf_counter() - t0
        row["bytes"] = os.path.getsize(path + ".npy") + os.path.getsize(path + ".inv.npy")
        row["built"] = n
        step = 32768

        def fn(q):
            qq = quantize_i8(q[None])[0].astype(np.float32)
            s = np.empty(n, np.float32)
            for a in range(0, n, step):
                b = min(n, a + step)
                s[a:b] = (m[a:b].astype(np.float32) @ qq) * inv[a:b]
            idx = np.argpartition(-s, K)[:K]
            return idx[np.argsort(-s[idx])]

        found, lat = time_queries(fn, queries)
    elif method.startswith("usearch-exact"):
        from usearch.index import search as us_search

        thr = 2 if method.endswith("-t2") else 1
        t0 = time.perf_counter()
        m = np.ascontiguousarray(x) if "f32" in method else quantize_i8(x)
        qs = queries if "f32" in method else quantize_i8(queries)
        np.save(path + ".npy", m)
        row.update(build_s=time.perf_counter() - t0, bytes=os.path.getsize(path + ".npy"), built=n)
        found, lat = time_queries(
            lambda q: us_search(m, q, K, "cos", exact=True, threads=thr).keys, qs
        )
    elif method.startswith("sqlitevec"):
        dt = method.split("-")[1]
        c, secs, done, drv = sv_build(path + ".db", x, dt, cap=cap)
        row.update(build_s=secs, built=done, driver=drv)
        c.close()
        row["bytes"] = dir_size(path + ".db")
        c, _ = sqlite_connect(path + ".db")
        found, lat = time_queries(sv_query_fn(c, dt), queries)
        c.close()
    elif method.startswith("usearch"):
        from usearch.index import Index

        dt = "f32" if method == "usearch-f32" else "i8"
        data = quantize_i8(x) if method == "usearch-i8" else x
        qs = quantize_i8(queries) if method == "usearch-i8" else queries
        ix = Index(
            ndim=dim,
            metric="cos",
            dtype=dt,
            connectivity=args.M,
            expansion_add=args.ef_construction,
        )
        t0 = time.perf_counter()
        done = 0
        step = 50_000
        for s in range(0, n, step):
            e = min(n, s + step)
            ix.add(np.arange(s, e, dtype=np.uint64), data[s:e], threads=args.threads)
            done = e
            if time.perf_counter() - t0 > cap:
                break
        ix.save(path + ".usearch")
        row.update(
            build_s=time.perf_counter() - t0, built=done, bytes=os.path.getsize(path + ".usearch")
        )
        t0 = time.perf_counter()
        ix2 = Index.restore(path + ".usearch")
        row["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        Index.restore(path + ".usearch", view=True)
        row["view_s"] = time.perf_counter() - t0
        rows = []
        for ef in args.ef:
            ix2.expansion_search = ef
            found, lat = time_queries(lambda q: ix2.search(q, K, threads=1).keys, qs)
            r = dict(row, method=f"{method} ef={ef}")
            rows.append(finish(r, found, lat, truth, done))
        return rows
    elif method == "hnswlib-f32":
        import hnswlib

        p = hnswlib.Index(space="cosine", dim=dim)
        p.init_index(max_elements=n, M=args.M, ef_construction=args.ef_construction)
        t0 = time.perf_counter()
        done = 0
        step = 50_000
        for s in range(0, n, step):
            e = min(n, s + step)
            p.add_items(x[s:e], np.arange(s, e), num_threads=args.threads)
            done = e
            if time.perf_counter() - t0 > cap:
                break
        p.save_index(path + ".hnsw")
        row.update(
            build_s=time.perf_counter() - t0, built=done, bytes=os.path.getsize(path + ".hnsw")
        )
        p.set_num_threads(1)
        rows = []
        for ef in args.ef:
            p.set_ef(ef)
            found, lat = time_queries(lambda q: p.knn_query(q, k=K, num_threads=1)[0][0], queries)
            r = dict(row, method=f"{method} ef={ef}")
            rows.append(finish(r, found, lat, truth, done))
        return rows
    else:
        raise SystemExit(f"unknown method {method}")
    return [finish(row, found, lat, truth, row["built"])]


def finish(row, found, lat, truth, built):
    row["p50_ms"] = statistics.median(lat)
    row["p95_ms"] = pct(lat, 95)
    row["recall"] = recall(found, truth) if built == row["n"] else None
    row["bytes_per_vec"] = row["bytes"] / max(1, built)
    return row


# --------------------------------------------------------------------------- filtered
def run_filtered(x, queries, tmp, args, emit):
    """N vectors split over U users; each query is restricted to one random user."""
    n, dim = x.shape
    rng = np.random.default_rng(args.seed + 1)
    users = rng.integers(0, args.users, n)
    qu = rng.integers(0, args.users, len(queries))
    rows_of = {u: np.flatnonzero(users == u) for u in range(args.users)}
    truth = np.empty((len(queries), K), np.int64)
    for i, (q, u) in enumerate(zip(queries, qu, strict=False)):
        r = rows_of[int(u)]
        s = x[r] @ q
        truth[i] = r[np.argsort(-s)[:K]]
    pairs = list(zip(queries, qu, strict=False))
    f"filtered {n // 1000}k/{args.users}u"
    xi8 = quantize_i8(x)
    quantize_i8(queries)

    def out(method, how, found, lat, **kw):
        r = {
            "section": "filtered",
            "n": n,
            "users": args.users,
            "method": method,
            "how": how,
            "p50_ms": statistics.median(lat),
            "p95_ms": pct(lat, 95),
            "recall": recall(found, truth),
        }
        r.update(kw)
        emit(r)

    # numpy int8, pre-filter: gather the user's rows, exact search over them
    inv = (1.0 / np.linalg.norm(xi8.astype(np.float32), axis=1)).astype(np.float32)

    def np_fn(p):
        q, u = p
        r = rows_of[int(u)]
        s = (xi8[r].astype(np.float32) @ qi8_of(q)) * inv[r]
        top = np.argpartition(-s, K)[:K]
        return r[top[np.argsort(-s[top])]]

    def qi8_of(q):
        return quantize_i8(q[None])[0].astype(np.float32)

    parts = set(args.filtered_parts.split(","))
    found, lat = time_queries(np_fn, pairs) if "numpy" in parts else (None, None)
    if found is not None:
        out(
            "numpy-i8",
            "pre-filter: exact over the user's rows (row ids per user kept in memory)",
            found,
            lat,
        )

    # usearch exact SIMD brute force over the user's contiguous slice (matrix kept sorted by user)
    from usearch.index import search as us_search

    order = np.argsort(users, kind="stable")
    xs = xi8[order]
    bounds = np.searchsorted(users[order], np.arange(args.users + 1))

    def ex_fn(p):
        q, u = p
        a, b = bounds[int(u)], bounds[int(u) + 1]
        keys = us_search(xs[a:b], quantize_i8(q[None])[0], K, "cos", exact=True, threads=1).keys
        return order[a + keys.astype(np.int64)]

    if "exact" in parts:
        found, lat = time_queries(ex_fn, pairs)
        out(
            "usearch-exact-i8",
            "pre-filter: exact SIMD scan of the user's contiguous slice",
            found,
            lat,
        )

    # sqlite-vec: partition key and metadata column, i8 and f32
    for dt in args.filtered_sv_dtypes if "sqlitevec" in parts else []:
        for kind in ("partition", "metadata"):
            p = os.path.join(tmp, f"filt-{dt}-{kind}.db")
            c, secs, _done, _ = sv_build(p, x, dt, users=users, filter_kind=kind, cap=args.build_cap)
            c.close()
            size = dir_size(p)
            c, _ = sqlite_connect(p)
            found, lat = time_queries(sv_query_fn(c, dt, with_user=True), pairs)
            c.close()
            how = (
                "in-query: `user_id integer partition key` (scans only that user's chunks)"
                if kind == "partition"
                else "in-query: metadata column `user_id integer` (filter during the scan)"
            )
            out(f"sqlitevec-{dt} {kind}", how, found, lat, build_s=secs, bytes_per_vec=size / n)

    # usearch: no predicate in the Python API -> post-filter (shown failing) or one index per user
    from usearch.index import Index

    if "usearch" not in parts:
        return run_filtered_hnswlib(x, users, pairs, out, args) if "hnswlib" in parts else None
    ix = Index(
        ndim=dim, metric="cos", dtype="i8", connectivity=args.M, expansion_add=args.ef_construction
    )
    ix.add(np.arange(n, dtype=np.uint64), xi8, threads=args.threads)
    for over in (100, 1000):
        ix.expansion_search = max(64, over)

        def post(p, over=over):
            q, u = p
            keys = ix.search(quantize_i8(q[None])[0], over, threads=1).keys
            return [int(k) for k in keys if users[k] == u][:K]

        found, lat = time_queries(post, pairs)
        out(
            f"usearch-i8 post-filter k'={over}",
            "POST-filter (violates the requirement; shown for the recall loss)",
            found,
            lat,
        )
    per = {}
    t0 = time.perf_counter()
    for u, r in rows_of.items():
        pi = Index(
            ndim=dim,
            metric="cos",
            dtype="i8",
            connectivity=args.M,
            expansion_add=args.ef_construction,
        )
        pi.add(r.astype(np.uint64), xi8[r], threads=args.threads)
        per[u] = pi
    build = time.perf_counter() - t0

    def per_fn(p):
        q, u = p
        return per[int(u)].search(quantize_i8(q[None])[0], K, threads=1).keys

    found, lat = time_queries(per_fn, pairs)
    out(
        "usearch-i8 per-user index",
        "partition: one HNSW per user (pre-filter by construction)",
        found,
        lat,
        build_s=build,
    )

    if "hnswlib" in parts:
        run_filtered_hnswlib(x, users, pairs, out, args)


def run_filtered_hnswlib(x, users, pairs, out, args):
    """hnswlib: filter callable evaluated inside the graph search."""
    n, dim = x.shape
    try:
        import hnswlib
    except ImportError:
        return
    h = hnswlib.Index(space="cosine", dim=dim)
    h.init_index(max_elements=n, M=args.M, ef_construction=args.ef_construction)
    h.add_items(x, np.arange(n), num_threads=args.threads)
    h.set_num_threads(1)
    for ef in args.ef:
        h.set_ef(ef)

        def hf(p):
            q, u = p
            u = int(u)
            return h.knn_query(q, k=K, num_threads=1, filter=lambda i: users[i] == u)[0][0]

        found, lat = time_queries(hf, pairs)
        out(
            f"hnswlib-f32 filter ef={ef}",
            "in-search: Python filter callable checked during graph traversal",
            found,
            lat,
        )


def run_small_users(tmp, args, emit):
    """sqlite-vec partition chunks are preallocated: many users with few vectors each."""
    n_users, per_user = 1000, 10
    x, _ = make_data(n_users * per_user, args.dim, 64, args.seed + 2, 1)
    users = np.repeat(np.arange(n_users), per_user)
    for cs in (None, 64):
        p = os.path.join(tmp, f"small-{cs}.db")
        c, secs, _done, _ = sv_build(p, x, "i8", users=users, filter_kind="partition", chunk_size=cs)
        c.close()
        emit(
            {
                "section": "small-users",
                "n": len(x),
                "users": n_users,
                "method": "sqlitevec-i8 partition",
                "chunk_size": cs or "default",
                "bytes_per_vec": dir_size(p) / len(x),
                "build_s": secs,
            }
        )


# --------------------------------------------------------------------------- table
def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render(rows):
    lines = []
    main = [r for r in rows if "section" not in r]
    if main:
        lines += [
            "| method | n | built | build s | p50 ms | p95 ms | bytes/vec on disk | recall@10 | load s (view s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sorted(main, key=lambda r: (r["n"], r["method"])):
            load = "-"
            if "load_s" in r:
                load = f"{r['load_s']:.2f} ({r['view_s']:.3f})"
            lines.append(
                f"| {r['method']} | {r['n']:,} | {r['built']:,} | {fmt(r['build_s'], 1)} | {fmt(r['p50_ms'])} | "
                f"{fmt(r['p95_ms'])} | {fmt(r['bytes_per_vec'], 0)} | {fmt(r['recall'], 3)} | {load} |"
            )
    filt = [r for r in rows if r.get("section") == "filtered"]
    if filt:
        lines += [
            "",
            "| filtered: method | n / users | how the filter is applied | p50 ms | p95 ms | recall@10 | bytes/vec |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in filt:
            lines.append(
                f"| {r['method']} | {r['n']:,} / {r['users']} | {r['how']} | {fmt(r['p50_ms'])} | "
                f"{fmt(r['p95_ms'])} | {fmt(r['recall'], 3)} | {fmt(r.get('bytes_per_vec'), 0)} |"
            )
    small = [r for r in rows if r.get("section") == "small-users"]
    if small:
        lines += [
            "",
            "| small users: method | n / users | chunk_size | bytes/vec on disk |",
            "|---|---|---|---:|",
        ]
        for r in small:
            lines.append(
                f"| {r['method']} | {r['n']:,} / {r['users']} | {r['chunk_size']} | {fmt(r['bytes_per_vec'], 0)} |"
            )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--M", type=int, default=16, help="HNSW connectivity")
    ap.add_argument("--ef-construction", type=int, default=128)
    ap.add_argument("--ef", default="64,128", help="HNSW search expansion values to test")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="build threads")
    ap.add_argument(
        "--build-cap", type=float, default=600, help="stop adding after this many seconds"
    )
    ap.add_argument(
        "--filtered", type=int, default=100000, help="vectors in the filtered test (0 = skip)"
    )
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--filtered-sv-dtypes", default="i8,f32")
    ap.add_argument(
        "--filtered-parts",
        default="numpy,exact,sqlitevec,usearch,hnswlib",
        help="which filtered variants to run",
    )
    ap.add_argument(
        "--small-users", action="store_true", help="also run the many-small-users disk test"
    )
    ap.add_argument("--out", default="vector_index_results.jsonl")
    ap.add_argument(
        "--tmp", default=None, help="scratch dir (default: a temp dir, removed at the end)"
    )
    ap.add_argument("--render", default=None, help="only print the table from a results JSONL file")
    args = ap.parse_args(argv)

    if args.render:
        with open(args.render) as f:
            print(render([json.loads(line) for line in f if line.strip()]))
        return
    args.ef = [int(e) for e in args.ef.split(",")]
    args.filtered_sv_dtypes = [d for d in args.filtered_sv_dtypes.split(",") if d]
    methods = [m for m in args.methods.split(",") if m]
    tmp = args.tmp or tempfile.mkdtemp(prefix="vecbench-")
    os.makedirs(tmp, exist_ok=True)
    rows = []

    def emit(r):
        rows.append(r)
        with open(args.out, "a") as f:
            f.write(json.dumps(r) + "\n")
        print(json.dumps(r), file=sys.stderr, flush=True)

    try:
        for n in [int(s) for s in args.sizes.split(",") if s]:
            t0 = time.perf_counter()
            x, q = make_data(n, args.dim, args.clusters, args.seed, args.queries)
            truth = exact_topk(x, q)
            print(
                f"# n={n}: data+truth {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True
            )
            for m in methods:
                for r in run_method(m, x, q, truth, tmp, args):
                    emit(r)
                for f in os.listdir(tmp):  # free disk between methods
                    p = os.path.join(tmp, f)
                    if os.path.isfile(p):
                        os.remove(p)
            del x
        if args.filtered:
            x, q = make_data(args.filtered, args.dim, args.clusters, args.seed, args.queries)
            run_filtered(x, q, tmp, args, emit)
        if args.small_users:
            run_small_users(tmp, args, emit)
    finally:
        if not args.tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(render(rows))


if __name__ == "__main__":
    main()
