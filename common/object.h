/*
 * object — the content-addressed object store, objects/sha256/XX/HEX.
 *
 * Every original byte that enters the lake is stored here once, named by
 * its SHA-256, shared by all zones and versions.  A new object is first
 * a temp file beside its final name: a regular file is hashed, then
 * copied by the kernel on a thread of its own while the caller parses the
 * source; a pipe is hashed while copied.  object_publish() waits for the
 * copy, checks that the source did not change meanwhile (size, inode,
 * modification and change times, as git and rsync do), fsyncs the temp,
 * makes it read-only (0444) and renames it into place.  Deferring the fsync lets the disk work while
 * the caller parses, and an object is never visible under its name
 * before all of its bytes are durable.  Storing bytes that are already
 * present changes nothing.
 */
#ifndef MLK_OBJECT_H
#define MLK_OBJECT_H

#include <sys/types.h>

#include "crypto.h"
#include "lake.h"
#include "status.h"

/* Sources of at least this many bytes are copied on a thread of their
 * own (object_put_fd returns with the copy running); smaller ones are
 * copied before it returns. */
#define OBJECT_ASYNC_MIN ((unsigned long long)8 << 20)

struct object_sync;

struct object_info {
	char sha256[SHA256_HEX];
	unsigned long long size;
	int existed;            /* the store already held these bytes */
	char *tmp;              /* new and not yet published (malloc'd) */
	int fd;                 /* open on tmp, or -1 */
	void *copy;             /* private: a copy still running */
	int synced;             /* tmp's bytes are durable (object_sync_*) */
};

/*
 * Store everything read from fd.  src names the input in errors.  When
 * info->tmp is set afterwards, the caller must object_publish() or
 * object_discard() it.  Calls for different infos may run on different
 * threads at once (the same bytes twice give two temps of one object).
 */
enum mlk_status object_put_fd(const struct lake *l, int fd, const char *src,
			      struct object_info *info, struct mlk_error *e);
/*
 * An object the caller writes itself (a de-identified copy): a temp file
 * in the store, open for reading and writing on info->fd (info->tmp its
 * path).  The writer hashes every byte as it writes it (the bytes are
 * never read again to be named); object_seal() takes that hash and size
 * and names the object: if the store already held those bytes the temp
 * is gone (info->existed, info->tmp NULL), else it is published like a
 * stored file (object_publish(), object_publish_many()) or discarded.
 * One file created per object, and its bytes written once.
 */
enum mlk_status object_create(const struct lake *l, struct object_info *info,
			      struct mlk_error *e);
void object_seal(const struct lake *l, struct object_info *info,
		 const char sha256[SHA256_HEX], unsigned long long size);

/*
 * A file made in the store's folder by someone else (a de-identified
 * genomics copy written by htslib): object_temp_name() reserves a new
 * name there (objects/.tmp-made.HEX, created empty; malloc'd), which the
 * maker may replace by rename; object_adopt() hashes what is there (one
 * read, no copy) and takes path over as info->tmp, to be published by
 * rename (object_publish_many()) or, when the store holds those bytes
 * already, removes it (info->existed).  On error path is gone too.
 */
enum mlk_status object_temp_name(const struct lake *l, char **path,
				 struct mlk_error *e);
enum mlk_status object_adopt(const struct lake *l, char *path,
			     struct object_info *info, struct mlk_error *e);

/* Wait for a running copy and check that the source did not change
 * meanwhile (MLK_INTEGRITY, naming src, when it did). */
enum mlk_status object_wait(struct object_info *info, const char *src,
			    struct mlk_error *e);
enum mlk_status object_publish(const struct lake *l, struct object_info *info,
			       struct mlk_error *e);
/*
 * object_publish() for n objects at once: their files and then their
 * directories are fsynced together (fsio_fsync_many), so that landing
 * many small files costs a few commits of the file system, not two each.
 * On failure, the objects not yet published are left for
 * object_discard().
 */
enum mlk_status object_publish_many(const struct lake *l,
				    struct object_info *const *v, size_t n,
				    struct mlk_error *e);
/*
 * Start making the bytes of the new objects among v durable (fsync, on
 * threads of their own) while the caller does other work, such as
 * parsing them; object_sync_finish() waits for that and marks those
 * synced, so object_publish_many() does not sync them again.  Objects
 * whose copy is still running are left to object_publish_many().  No
 * object of v may be published or discarded in between.
 */
struct object_sync *object_sync_start(struct object_info *const *v,
				      size_t n);
void object_sync_finish(struct object_sync *os);

void object_discard(struct object_info *info);
/*
 * Where the object's bytes can be read now: NULL while a copy from the
 * source is still running (read the source's descriptor meanwhile).
 */
char *object_read_path(const struct lake *l, const struct object_info *info);

/* Path of an object (malloc'd), whether it exists or not. */
char *object_path(const struct lake *l, const char *sha256_hex);

int object_exists(const struct lake *l, const char *sha256_hex);

#endif
