#include "status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

const char *mlk_progname = "mlk";

void mlk_error_clear(struct mlk_error *e)
{
	e->status = MLK_OK;
	e->file[0] = '\0';
	e->line = 0;
	e->msg[0] = '\0';
}

static void set_file(struct mlk_error *e, const char *file)
{
	if (file)
		snprintf(e->file, sizeof e->file, "%s", file);
	else
		e->file[0] = '\0';
}

enum mlk_status mlk_error_set(struct mlk_error *e, enum mlk_status status,
			      const char *file, long long line,
			      const char *fmt, ...)
{
	va_list ap;
	e->status = status;
	set_file(e, file);
	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return status;
}

enum mlk_status mlk_error_errno(struct mlk_error *e, const char *file,
				const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	char m[400];
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	e->status = MLK_SYSTEM;
	set_file(e, file);
	e->line = 0;
	snprintf(e->msg, sizeof e->msg, "%s: %s", m, strerror(saved));
	return MLK_SYSTEM;
}

void mlk_error_print(const char *prog, const struct mlk_error *e)
{
	if (e->file[0] && e->line)
		fprintf(stderr, "%s: '%s':%lld: %s\n", prog, e->file, e->line,
			e->msg);
	else if (e->file[0])
		fprintf(stderr, "%s: '%s': %s\n", prog, e->file, e->msg);
	else
		fprintf(stderr, "%s: %s\n", prog, e->msg);
}

void mlk_warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", mlk_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int mlk_isatty(int fd)
{
	return isatty(fd);
}
