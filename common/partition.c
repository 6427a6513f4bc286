#include "partition.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "xalloc.h"
#include "banned.h"

void pspec_init(struct pspec *s)
{
	memset(s, 0, sizeof *s);
}

void pspec_release(struct pspec *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->f[i].name);
		free(s->f[i].source);
	}
	free(s->f);
	pspec_init(s);
}

static int valid_name(const char *p, size_t n)
{
	if (!n || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' ||
		      (i && (c == '.' || c == '-'))))
			return 0;
	}
	return 1;
}

enum mlk_status pspec_add(struct pspec *s, const char *text,
			  struct mlk_error *e)
{
	struct pfield f = { NULL, NULL, PT_IDENTITY, 0 };
	const char *p = text;
	const char *eq = strchr(p, '=');
	const char *name = NULL;
	size_t name_len = 0;
	if (eq) {
		name = p;
		name_len = (size_t)(eq - p);
		p = eq + 1;
	}
	const char *open = strchr(p, '(');
	const char *src = p;
	size_t src_len = strlen(p);
	if (open) {
		size_t tl = (size_t)(open - p);
		const char *close = strrchr(p, ')');
		if (!close || close[1] != '\0' || close < open)
			goto bad;
		src = open + 1;
		src_len = (size_t)(close - src);
		if (tl == 4 && !memcmp(p, "year", 4)) {
			f.t = PT_YEAR;
		} else if (tl == 5 && !memcmp(p, "month", 5)) {
			f.t = PT_MONTH;
		} else if (tl == 3 && !memcmp(p, "day", 3)) {
			f.t = PT_DAY;
		} else if (tl == 8 && !memcmp(p, "identity", 8)) {
			f.t = PT_IDENTITY;
		} else if ((tl > 7 && !memcmp(p, "bucket[", 7)) ||
			   (tl > 9 && !memcmp(p, "truncate[", 9))) {
			int is_bucket = p[0] == 'b';
			const char *num = p + (is_bucket ? 7 : 9);
			char *end;
			long v = strtol(num, &end, 10);
			if (end != open - 1 || *end != ']' || v < 1 ||
			    v > 1000000)
				goto bad;
			f.t = is_bucket ? PT_BUCKET : PT_TRUNCATE;
			f.arg = (int)v;
		} else {
			goto bad;
		}
	}
	if (!valid_name(src, src_len) || (name && !valid_name(name, name_len)))
		goto bad;
	f.source = xstrndup(src, src_len);
	if (name)
		f.name = xstrndup(name, name_len);
	else if (f.t == PT_YEAR)
		f.name = xstrdup("year");
	else if (f.t == PT_MONTH)
		f.name = xstrdup("month");
	else if (f.t == PT_DAY)
		f.name = xstrdup("day");
	else if (f.t == PT_BUCKET)
		f.name = xasprintf("%s_bucket", f.source);
	else if (f.t == PT_TRUNCATE)
		f.name = xasprintf("%s_trunc", f.source);
	else
		f.name = xstrdup(f.source);
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->f[i].name, f.name)) {
			free(f.name);
			free(f.source);
			return mlk_error_set(e, MLK_USAGE, NULL, 0,
					     "partition column '%s' appears "
					     "twice", s->f[i].name);
		}
	if (s->n >= PSPEC_MAX) {
		free(f.name);
		free(f.source);
		return mlk_error_set(e, MLK_USAGE, NULL, 0,
				     "more than %d partition fields",
				     PSPEC_MAX);
	}
	XGROW(s->f, s->alloc, s->n + 1);
	s->f[s->n++] = f;
	return MLK_OK;
bad:
	return mlk_error_set(e, MLK_USAGE, NULL, 0,
			     "bad partition field '%s' (want source, year(x), "
			     "month(x), day(x), bucket[N](x) or truncate[W](x))",
			     text);
}

void pspec_describe(const struct pspec *s, struct buf *out)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct pfield *f = &s->f[i];
		if (i)
			buf_addstr(out, ", ");
		switch (f->t) {
		case PT_IDENTITY:
			buf_addstr(out, f->source);
			break;
		case PT_YEAR:
			buf_addf(out, "%s=year(%s)", f->name, f->source);
			break;
		case PT_MONTH:
			buf_addf(out, "%s=month(%s)", f->name, f->source);
			break;
		case PT_DAY:
			buf_addf(out, "%s=day(%s)", f->name, f->source);
			break;
		case PT_BUCKET:
			buf_addf(out, "%s=bucket[%d](%s)", f->name, f->arg,
				 f->source);
			break;
		case PT_TRUNCATE:
			buf_addf(out, "%s=truncate[%d](%s)", f->name, f->arg,
				 f->source);
			break;
		}
	}
}

static int safe_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

void partition_escape(const char *val, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = out->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)val[i];
		if (safe_byte(c) && !(i == 0 && c == '.')) {
			buf_addch(out, (char)c);
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
			buf_add(out, esc, 3);
		}
	}
	if (out->len - start > 180) {
		char h[SHA256_HEX];
		sha256_hex_once(val, len, h);
		size_t cut = start + 163;
		/* Never cut an escape in half. */
		while (cut > start && (out->data[cut - 1] == '%' ||
				       (cut >= start + 2 &&
					out->data[cut - 2] == '%')))
			cut--;
		buf_truncate(out, cut);
		buf_addch(out, '~');
		buf_add(out, h, 16);
	}
}

static int digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

uint32_t murmur3_32(const void *key, size_t n, uint32_t seed)
{
	const uint8_t *p = key;
	uint32_t h = seed, k;
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
		    (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
		k *= c1;
		k = (k << 15) | (k >> 17);
		k *= c2;
		h ^= k;
		h = (h << 13) | (h >> 19);
		h = h * 5 + 0xe6546b64;
	}
	k = 0;
	switch (n & 3) {
	case 3: k ^= (uint32_t)p[i + 2] << 16; /* fall through */
	case 2: k ^= (uint32_t)p[i + 1] << 8; /* fall through */
	case 1:
		k ^= p[i];
		k *= c1;
		k = (k << 15) | (k >> 17);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)n;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

void partition_add(const struct pfield *f, const char *val, size_t len,
		   int is_number, struct buf *out)
{
	buf_addstr(out, f->name);
	buf_addch(out, '=');
	if (!val || !len)
		goto dflt;
	switch (f->t) {
	case PT_IDENTITY:
		partition_escape(val, len, out);
		return;
	case PT_YEAR:
		if (len < 4 || !digits(val, 4))
			goto dflt;
		buf_add(out, val, 4);
		return;
	case PT_MONTH:
		if (len < 7 || !digits(val, 4) || val[4] != '-' ||
		    !digits(val + 5, 2))
			goto dflt;
		buf_add(out, val + 5, 2);
		return;
	case PT_DAY:
		if (len < 10 || !digits(val, 4) || val[4] != '-' ||
		    !digits(val + 5, 2) || val[7] != '-' || !digits(val + 8, 2))
			goto dflt;
		buf_add(out, val + 8, 2);
		return;
	case PT_BUCKET: {
		uint32_t h;
		if (is_number && len < 19 && (digits(val, len) ||
		    (val[0] == '-' && len > 1 && digits(val + 1, len - 1)))) {
			/* Iceberg hashes integers as 8-byte little-endian
			 * longs, strings as their UTF-8 bytes. */
			long long v = strtoll(val, NULL, 10);
			uint64_t u = (uint64_t)v;
			uint8_t le[8];
			for (int k = 0; k < 8; k++)
				le[k] = (uint8_t)(u >> (8 * k));
			h = murmur3_32(le, 8, 0);
		} else {
			h = murmur3_32(val, len, 0);
		}
		buf_addf(out, "%u", (unsigned)((h & 0x7fffffffu) %
					       (uint32_t)f->arg));
		return;
	}
	case PT_TRUNCATE:
		if (is_number && len < 19 && (digits(val, len) ||
		    (val[0] == '-' && len > 1 && digits(val + 1, len - 1)))) {
			long long v = strtoll(val, NULL, 10);
			long long w = f->arg;
			buf_addf(out, "%lld", v - (((v % w) + w) % w));
			return;
		}
		/* Strings: the first W code points. */
		size_t i = 0;
		int cps = 0;
		while (i < len && cps < f->arg) {
			i++;
			while (i < len && ((unsigned char)val[i] & 0xc0) == 0x80)
				i++;
			cps++;
		}
		partition_escape(val, i, out);
		return;
	}
dflt:
	buf_addstr(out, PARTITION_DEFAULT);
}
