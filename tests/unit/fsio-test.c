/*
 * fsio-test — unit checks for fsio_write_many() (common/fsio.c): many new
 * small files written atomically on several threads, those that exist
 * left alone, no temp left behind on success or on failure.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsio.h"
#include "xalloc.h"
#include "tap.h"
#include "banned.h"

/* Names in dir starting with ".tmp-". */
static int temps_in(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, ".tmp-", 5);
	if (d)
		closedir(d);
	return n;
}

static int holds(const char *path, const char *want)
{
	char *data = NULL;
	size_t len = 0;
	struct mlk_error e = MLK_ERROR_INIT;
	int ok = fsio_read_file(path, &data, &len, &e) == MLK_OK &&
		 len == strlen(want) && !memcmp(data, want, len);
	free(data);
	return ok;
}

static void test_write_many(const char *root)
{
	char *dir = xasprintf("%s/m", root);
	struct mlk_error e = MLK_ERROR_INIT;
	check(fsio_mkdirs(dir, 0755, &e) == MLK_OK, "mkdirs");
	enum { N = 300 };
	char *paths[N];
	for (int i = 0; i < N; i++)
		paths[i] = xasprintf("%s/f%03d", dir, i);
	/* One exists already: it stays as it is. */
	check(fsio_write_atomic(paths[7], "old\n", 4, 0644, &e) == MLK_OK,
	      "a file that exists before");
	check(fsio_write_many(paths, N, "b123\n", 5, 0444, 2, &e) == MLK_OK,
	      "write_many on 2 threads");
	int good = 0, mode = 0;
	for (int i = 0; i < N; i++) {
		struct stat st;
		if (i != 7 && holds(paths[i], "b123\n"))
			good++;
		if (stat(paths[i], &st) == 0 &&
		    (st.st_mode & 0777) == (i == 7 ? 0644 : 0444))
			mode++;
	}
	check(good == N - 1, "every new file holds the data (%d)", good);
	check(holds(paths[7], "old\n"), "the existing file is untouched");
	check(mode == N, "modes: 0444 new, 0644 untouched (%d)", mode);
	check(temps_in(dir) == 0, "no temp left");
	check(fsio_write_many(paths, N, "x", 1, 0444, 1, &e) == MLK_OK &&
	      holds(paths[0], "b123\n"), "a second run changes nothing");
	check(fsio_write_many(paths, 0, "x", 1, 0444, 2, &e) == MLK_OK,
	      "nothing to write");

	/* A path whose directory is missing fails; no temp is left. */
	char *bad[3] = { xasprintf("%s/g0", dir),
			 xasprintf("%s/missing/g1", dir),
			 xasprintf("%s/g2", dir) };
	struct mlk_error be = MLK_ERROR_INIT;
	check(fsio_write_many(bad, 3, "y", 1, 0444, 2, &be) == MLK_SYSTEM,
	      "a missing directory is a system error");
	check(strstr(be.file, "missing") != NULL, "the error names the path");
	check(temps_in(dir) == 0 && !fsio_exists(bad[0]) &&
	      !fsio_exists(bad[2]), "nothing written, no temp left");
	for (int i = 0; i < 3; i++)
		free(bad[i]);
	for (int i = 0; i < N; i++)
		free(paths[i]);
	free(dir);
}

int main(void)
{
	(void)mem_read;   /* tap.h's reader is not needed here */
	char tmpl[] = "/tmp/mlk-fsio-test.XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	test_write_many(tmpl);
	fsio_remove_tree(tmpl);
	return tap_done();
}
