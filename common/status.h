/*
 * status — the exit-code contract and the error a library call fills in.
 *
 * Every fallible function in common/ returns an enum mlk_status (MLK_OK is
 * 0) and, on failure, fills a caller-owned struct mlk_error with where the
 * problem is (file, line) and what it is.  The message never carries a
 * field's value: values may be protected health information.  Only cmd/
 * prints errors (mlk_error_print) and exits.
 */
#ifndef MLK_STATUS_H
#define MLK_STATUS_H

#include <stddef.h>

enum mlk_status {
	MLK_OK = 0,
	MLK_PARTIAL = 1,   /* done, but some inputs were quarantined or rejected */
	MLK_USAGE = 2,     /* usage error */
	MLK_DENIED = 3,    /* denied by policy */
	MLK_INTEGRITY = 4, /* verification or tamper failure */
	MLK_SYSTEM = 5,    /* system or I/O error */
};

struct mlk_error {
	enum mlk_status status;
	char file[512];    /* "" when not about a file */
	long long line;    /* 0 when not about a line */
	char msg[512];
};

#define MLK_ERROR_INIT { MLK_OK, "", 0, "" }

void mlk_error_clear(struct mlk_error *e);

/* Fill e and return status; file may be NULL. */
enum mlk_status mlk_error_set(struct mlk_error *e, enum mlk_status status,
			      const char *file, long long line,
			      const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* As mlk_error_set, with ": strerror(errno)" appended. */
enum mlk_status mlk_error_errno(struct mlk_error *e, const char *file,
				const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "prog: 'file':line: msg\n" on stderr. */
void mlk_error_print(const char *prog, const struct mlk_error *e);

/* The program name for messages, set once by main(). */
extern const char *mlk_progname;

/* "prog: msg\n" on stderr (lowercase, no full stop, no values). */
void mlk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when fd is a terminal (for tables and progress). */
int mlk_isatty(int fd);

#endif
