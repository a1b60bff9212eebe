// SPDX-License-Identifier: GPL-2.0
/*
 * L2 table cache.  Tables are cached in slices (a whole cluster, at most
 * 4 KiB) keyed by their host offset, as QEMU's l2-cache-entry-size does,
 * so a random workload does not pull in a 2 MiB table for each 8-byte
 * entry it needs.
 *
 * A hit is lockless: RCU protects the slice while its entry is copied
 * out, and slices are freed after a grace period.  A miss inserts a
 * slice marked LOADING, so concurrent misses on the same slice wait for
 * one read instead of issuing several.  The number of slices is bounded;
 * a CLOCK sweep evicts slices not referenced since the last sweep.
 */
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>

#include "qcow2.h"

enum {
	QCOW2_SLICE_LOADING,	/* a read is in flight; wait on this bit */
	QCOW2_SLICE_UPTODATE,	/* @data holds the table bytes */
	QCOW2_SLICE_REFERENCED,	/* hit since the last CLOCK sweep */
	QCOW2_SLICE_DIRTY,	/* changed in memory, not yet written */
};

void qcow2_slice_put(struct qcow2_slice *s)
{
	if (refcount_dec_and_test(&s->ref))
		kfree_rcu(s, rcu);
}

/*
 * Drop slices until at most @target remain.  A slice is skipped when it
 * is loading, has waiters, or was referenced since the hand last passed
 * (the bit is cleared, giving it a second chance).
 */
static unsigned long qcow2_cache_evict(struct qcow2_cache *c,
				       unsigned int target)
{
	unsigned int scanned = 0, limit;
	unsigned long freed = 0;
	struct qcow2_slice *s;
	unsigned long idx;

	spin_lock(&c->evict_lock);
	limit = 2 * atomic_read(&c->nr_slices) + 2;
	while (atomic_read(&c->nr_slices) > target && scanned < limit) {
		idx = c->hand;
		s = xa_find(&c->slices, &idx, ULONG_MAX, XA_PRESENT);
		if (!s) {
			c->hand = 0;
			scanned++;
			continue;
		}
		c->hand = idx + 1;
		scanned++;
		if (!test_bit(QCOW2_SLICE_UPTODATE, &s->flags) ||
		    test_bit(QCOW2_SLICE_DIRTY, &s->flags) ||
		    refcount_read(&s->ref) != 1)
			continue;
		if (test_and_clear_bit(QCOW2_SLICE_REFERENCED, &s->flags))
			continue;
		if (xa_cmpxchg(&c->slices, idx, s, NULL, 0) != s)
			continue;
		atomic_dec(&c->nr_slices);
		this_cpu_inc(c->stats->evictions);
		qcow2_slice_put(s);
		freed++;
	}
	spin_unlock(&c->evict_lock);
	return freed;
}

/*
 * Under memory pressure the cache gives back slices, down to what one
 * request needs; misses then read them again.
 */
static unsigned long qcow2_cache_count(struct shrinker *shrinker,
				       struct shrink_control *sc)
{
	struct qcow2_cache *c = qcow2_shrinker_private(shrinker);
	int n = atomic_read(&c->nr_slices) - QCOW2_MIN_CACHE_SLICES;

	return n > 0 ? n : 0;
}

static unsigned long qcow2_cache_scan(struct shrinker *shrinker,
				      struct shrink_control *sc)
{
	struct qcow2_cache *c = qcow2_shrinker_private(shrinker);
	int n = atomic_read(&c->nr_slices);
	unsigned long target;

	if (n <= QCOW2_MIN_CACHE_SLICES)
		return SHRINK_STOP;
	target = max_t(long, QCOW2_MIN_CACHE_SLICES,
		       (long)n - (long)sc->nr_to_scan);
	return qcow2_cache_evict(c, target) ?: SHRINK_STOP;
}

/**
 * qcow2_cache_init() - set up an empty cache
 * @c: the cache, zeroed by the caller
 * @file: the image file
 * @slice_size: bytes per slice, a power of two from 512 to 4096
 * @bytes: memory bound for the slices
 * @name: name of the cache's shrinker
 *
 * Return: 0 or -ENOMEM.
 */
int qcow2_cache_init(struct qcow2_cache *c, struct file *file,
		     unsigned int slice_size, u64 bytes, const char *name)
{
	c->stats = alloc_percpu(struct qcow2_cache_stats);
	if (!c->stats)
		return -ENOMEM;
	c->shrinker = qcow2_shrinker_create(qcow2_cache_count, qcow2_cache_scan,
					    c, name);
	if (!c->shrinker) {
		free_percpu(c->stats);
		c->stats = NULL;
		return -ENOMEM;
	}
	xa_init(&c->slices);
	spin_lock_init(&c->evict_lock);
	atomic_set(&c->nr_slices, 0);
	atomic_set(&c->nr_dirty, 0);
	c->file = file;
	c->slice_size = slice_size;
	c->max_slices = max_t(u64, QCOW2_MIN_CACHE_SLICES,
			      min_t(u64, bytes / slice_size, INT_MAX));
	return 0;
}

/**
 * qcow2_cache_destroy() - free every slice
 * @c: the cache; no lookups may run any more
 */
void qcow2_cache_destroy(struct qcow2_cache *c)
{
	struct qcow2_slice *s;
	unsigned long idx;

	if (!c->stats)
		return;
	qcow2_shrinker_destroy(c->shrinker);
	xa_for_each(&c->slices, idx, s) {
		xa_erase(&c->slices, idx);
		qcow2_slice_put(s);
	}
	xa_destroy(&c->slices);
	free_percpu(c->stats);
	c->stats = NULL;
}

/* Read a slice that nobody else is loading; wake its waiters after. */
static int qcow2_cache_load(struct qcow2_cache *c, struct qcow2_slice *s,
			    u64 offset)
{
	ssize_t ret;

	ret = qcow2_file_read(c->file, s->data, c->slice_size, offset);
	if (ret >= 0 && ret != c->slice_size)
		ret = -EIO;
	if (ret < 0) {
		s->err = ret;
		/* Forget the slice so the next lookup retries the read. */
		xa_cmpxchg(&c->slices, offset >> SECTOR_SHIFT, s, NULL, 0);
		atomic_dec(&c->nr_slices);
	} else {
		set_bit(QCOW2_SLICE_UPTODATE, &s->flags);
	}
	clear_bit_unlock(QCOW2_SLICE_LOADING, &s->flags);
	/* Order the bit clear before wake_up_bit()'s waitqueue check. */
	smp_mb__after_atomic();
	wake_up_bit(&s->flags, QCOW2_SLICE_LOADING);
	return ret < 0 ? ret : 0;
}

/*
 * Find the slice at @slice_offset, reading it on a miss.  On success the
 * caller holds a reference (qcow2_slice_put()).
 */
static int qcow2_cache_lookup(struct qcow2_cache *c, u64 slice_offset,
			      struct qcow2_slice **slicep)
{
	unsigned long key = slice_offset >> SECTOR_SHIFT;
	struct qcow2_slice *s, *old;
	int ret;

again:
	rcu_read_lock();
	s = xa_load(&c->slices, key);
	if (s && !refcount_inc_not_zero(&s->ref))
		s = NULL;
	rcu_read_unlock();

	if (s) {
		/* Someone else may be reading this slice: wait for the result. */
		wait_on_bit(&s->flags, QCOW2_SLICE_LOADING,
			    TASK_UNINTERRUPTIBLE);
		ret = s->err;
		if (!ret && !test_bit(QCOW2_SLICE_UPTODATE, &s->flags))
			ret = -EAGAIN;
		if (ret) {
			qcow2_slice_put(s);
			if (ret == -EAGAIN)
				goto again;
			return ret;
		}
		if (!test_bit(QCOW2_SLICE_REFERENCED, &s->flags))
			set_bit(QCOW2_SLICE_REFERENCED, &s->flags);
		this_cpu_inc(c->stats->hits);
		*slicep = s;
		return 0;
	}

	s = kmalloc(struct_size(s, data, c->slice_size / sizeof(__be64)),
		    GFP_NOIO);
	if (!s)
		return -ENOMEM;
	refcount_set(&s->ref, 2);	/* the xarray's and ours */
	s->flags = BIT(QCOW2_SLICE_LOADING);
	s->err = 0;
	s->offset = slice_offset;

	old = xa_cmpxchg(&c->slices, key, NULL, s, GFP_NOIO);
	if (old) {
		kfree(s);
		if (xa_is_err(old))
			return xa_err(old);
		goto again;	/* lost a race with another miss */
	}
	atomic_inc(&c->nr_slices);
	this_cpu_inc(c->stats->misses);

	ret = qcow2_cache_load(c, s, slice_offset);
	if (ret) {
		qcow2_slice_put(s);	/* the xarray's reference */
		qcow2_slice_put(s);
		return ret;
	}
	if (atomic_read(&c->nr_slices) > c->max_slices)
		qcow2_cache_evict(c, c->max_slices);
	*slicep = s;
	return 0;
}

/**
 * qcow2_cache_peek_entry() - read one entry of an L2 table if it is cached
 * @c: the cache
 * @slice_offset: host offset of the slice, a multiple of the slice size
 * @index: entry index within the slice
 * @entry: the entry, host endian
 *
 * Context: any; never sleeps.  A miss is not counted: the caller either
 * gives up or goes on to qcow2_cache_get_entry(), which counts it.
 * Return: 0 on a hit, -EAGAIN when the slice is not cached (or loading).
 */
int qcow2_cache_peek_entry(struct qcow2_cache *c, u64 slice_offset,
			   unsigned int index, u64 *entry)
{
	struct qcow2_slice *s;

	/* The hit path takes no reference: RCU keeps the slice alive. */
	rcu_read_lock();
	s = xa_load(&c->slices, slice_offset >> SECTOR_SHIFT);
	if (!s || !test_bit(QCOW2_SLICE_UPTODATE, &s->flags)) {
		rcu_read_unlock();
		return -EAGAIN;
	}
	*entry = be64_to_cpu(READ_ONCE(s->data[index]));
	if (!test_bit(QCOW2_SLICE_REFERENCED, &s->flags))
		set_bit(QCOW2_SLICE_REFERENCED, &s->flags);
	rcu_read_unlock();
	this_cpu_inc(c->stats->hits);
	return 0;
}

/**
 * qcow2_cache_get_entry() - read one 64-bit entry of an L2 table
 * @c: the cache
 * @slice_offset: host offset of the slice, a multiple of the slice size
 * @index: entry index within the slice
 * @entry: the entry, host endian
 *
 * Context: process context, may sleep on a miss; the caller is in a
 * memalloc_noio scope.
 * Return: 0, or a negative errno from reading the image.
 */
int qcow2_cache_get_entry(struct qcow2_cache *c, u64 slice_offset,
			  unsigned int index, u64 *entry)
{
	struct qcow2_slice *s;
	int ret;

	if (!qcow2_cache_peek_entry(c, slice_offset, index, entry))
		return 0;
	ret = qcow2_cache_lookup(c, slice_offset, &s);
	if (ret)
		return ret;
	*entry = be64_to_cpu(READ_ONCE(s->data[index]));
	qcow2_slice_put(s);
	return 0;
}

/**
 * qcow2_cache_get() - get a slice to change it
 * @c: the cache
 * @slice_offset: host offset of the slice, a multiple of the slice size
 * @slicep: the slice, with a reference the caller drops with
 *	qcow2_slice_put()
 *
 * Context: process context, may sleep; the caller holds the image's
 * meta_lock, the only lock under which slices change.
 * Return: 0 or a negative errno from reading the image.
 */
int qcow2_cache_get(struct qcow2_cache *c, u64 slice_offset,
		    struct qcow2_slice **slicep)
{
	return qcow2_cache_lookup(c, slice_offset, slicep);
}

/**
 * qcow2_cache_mark_dirty() - note that a slice must be written back
 * @c: the cache
 * @s: a slice the caller holds and has just changed
 *
 * A dirty slice is never evicted; qcow2_cache_writeback() cleans it.
 */
void qcow2_cache_mark_dirty(struct qcow2_cache *c, struct qcow2_slice *s)
{
	if (!test_and_set_bit(QCOW2_SLICE_DIRTY, &s->flags))
		atomic_inc(&c->nr_dirty);
}

/**
 * qcow2_cache_writeback() - write every dirty slice
 * @c: the cache
 * @write: writes one slice (after its overlap check); returns 0 or -errno
 * @img: passed to @write
 *
 * Context: the image's meta_lock is held, so no slice changes meanwhile.
 * Return: number of slices written, or the first error (the slice stays
 * dirty and later ones are not tried: ordering is the caller's promise).
 */
int qcow2_cache_writeback(struct qcow2_cache *c,
			  int (*write)(struct qcow2_image *img,
				       struct qcow2_slice *s),
			  struct qcow2_image *img)
{
	struct qcow2_slice *s;
	unsigned long idx;
	int ret, n = 0;

	if (!atomic_read(&c->nr_dirty))
		return 0;
	xa_for_each(&c->slices, idx, s) {
		if (!test_bit(QCOW2_SLICE_DIRTY, &s->flags))
			continue;
		ret = write(img, s);
		if (ret)
			return ret;
		clear_bit(QCOW2_SLICE_DIRTY, &s->flags);
		atomic_dec(&c->nr_dirty);
		n++;
	}
	return n;
}

/**
 * qcow2_cache_forget() - drop every slice of a host range
 * @c: the cache
 * @offset: start of the range
 * @len: its length
 *
 * Used when a cluster is freed or gets new contents written around the
 * cache (a new table): later lookups must read the file again.
 *
 * Context: the image's meta_lock is held.
 */
void qcow2_cache_forget(struct qcow2_cache *c, u64 offset, u64 len)
{
	unsigned long idx = offset >> SECTOR_SHIFT;
	unsigned long last = (offset + len - 1) >> SECTOR_SHIFT;
	struct qcow2_slice *s;

	xa_for_each_range(&c->slices, idx, s, idx, last) {
		if (!test_bit(QCOW2_SLICE_UPTODATE, &s->flags))
			continue;	/* loading: cannot be this range's */
		if (xa_cmpxchg(&c->slices, idx, s, NULL, 0) != s)
			continue;
		if (test_and_clear_bit(QCOW2_SLICE_DIRTY, &s->flags))
			atomic_dec(&c->nr_dirty);
		atomic_dec(&c->nr_slices);
		qcow2_slice_put(s);
	}
}

/**
 * qcow2_cache_dirty() - slices waiting to be written
 * @c: the cache
 *
 * Return: the number of dirty slices.
 */
unsigned int qcow2_cache_dirty(struct qcow2_cache *c)
{
	return atomic_read(&c->nr_dirty);
}

/**
 * qcow2_cache_read_stats() - sum the per-CPU counters
 * @c: the cache
 * @sum: the totals
 */
void qcow2_cache_read_stats(struct qcow2_cache *c,
			    struct qcow2_cache_stats *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	if (!c->stats)
		return;
	for_each_possible_cpu(cpu) {
		const struct qcow2_cache_stats *st = per_cpu_ptr(c->stats, cpu);

		sum->hits += READ_ONCE(st->hits);
		sum->misses += READ_ONCE(st->misses);
		sum->evictions += READ_ONCE(st->evictions);
	}
}

/**
 * qcow2_cache_used() - bytes of slices the cache holds now
 * @c: the cache
 *
 * Return: the byte count.
 */
u64 qcow2_cache_used(struct qcow2_cache *c)
{
	return (u64)atomic_read(&c->nr_slices) * c->slice_size;
}
