/*
 * fsio — durable, atomic changes to files and directories.
 *
 * Everything mlk makes visible goes through here: a temp name in the same
 * directory, written, fsynced, renamed over the final name, and the
 * directory fsynced, so a crash leaves the old state or the new one, never
 * half.  Temp names start with ".tmp-" so that readers globbing "*.gz" or
 * "*.json" never see them.  Locks are flock(2) locks on lock files, which
 * the kernel drops when a process dies (a killed writer never wedges the
 * lake).  Paths returned are malloc'd and owned by the caller.
 */
#ifndef MLK_FSIO_H
#define MLK_FSIO_H

#include <stddef.h>
#include <sys/types.h>

#include "status.h"

/* mkdir -p with mode for the directories it creates. */
enum mlk_status fsio_mkdirs(const char *path, mode_t mode,
			    struct mlk_error *e);
enum mlk_status fsio_fsync_dir(const char *dir, struct mlk_error *e);
/* fsync the directory holding path. */
enum mlk_status fsio_fsync_parent(const char *path, struct mlk_error *e);

/* Write data to path atomically (temp, fsync, rename, fsync dir). */
enum mlk_status fsio_write_atomic(const char *path, const void *data,
				  size_t len, mode_t mode,
				  struct mlk_error *e);

/*
 * Create a new temp file beside final_path ("DIR/.tmp-NAME.XXXXXX"),
 * opened O_RDWR|O_CLOEXEC with mode 0600; *tmp_path is malloc'd.
 */
enum mlk_status fsio_temp_beside(const char *final_path, int *fd,
				 char **tmp_path, struct mlk_error *e);

/* fsync fd, close it, chmod tmp to mode, rename to final, fsync the dir
 * (unless nodirsync: the caller syncs directories in a batch). */
enum mlk_status fsio_commit(int fd, const char *tmp, const char *final,
			    mode_t mode, int nodirsync, struct mlk_error *e);

/*
 * fsync n descriptors on up to 16 threads at once, so that the file system
 * commits them together (many small files: ~7x faster than one by one).
 * Returns 0, or the errno of a failure with its index in *bad.
 */
int fsio_fsync_many(const int *fds, size_t n, size_t *bad);

/*
 * Write data (len bytes) into each of n new files paths[i], each
 * atomically (a temp beside it, written; then all fsynced together, given
 * mode and renamed into place), on up to `threads` threads: creating a
 * file is CPU work in the kernel, a lot of it on some file systems.  A
 * path that already exists is left as it is.  The directories are the
 * caller's to sync.  On failure (the first by index), no temp is left;
 * files already renamed stay.
 */
enum mlk_status fsio_write_many(char *const *paths, size_t n,
				const void *data, size_t len, mode_t mode,
				int threads, struct mlk_error *e);

/* Write all of n bytes; MLK_SYSTEM on error. */
enum mlk_status fsio_write_all(int fd, const void *p, size_t n,
			       const char *what, struct mlk_error *e);

/* Read a whole (small) file into *data (NUL-terminated), *len. */
enum mlk_status fsio_read_file(const char *path, char **data, size_t *len,
			       struct mlk_error *e);

/* Exclusive lock on path (created 0644 if missing), blocking. */
enum mlk_status fsio_lock(const char *path, int *fd, struct mlk_error *e);
void fsio_unlock(int fd);

int fsio_exists(const char *path);
/*
 * The names in dir that end in suffix ("" for any), without it, sorted;
 * names starting with '.' are left out.  A missing dir has none.  The
 * caller frees each name and the array (fsio_list_free).
 */
enum mlk_status fsio_list(const char *dir, const char *suffix,
			  char ***names, size_t *n, struct mlk_error *e);
void fsio_list_free(char **names, size_t n);
/* rm -rf for staging leftovers: never follows a symbolic link. */
void fsio_remove_tree(const char *path);
int fsio_is_dir(const char *path);

#endif
