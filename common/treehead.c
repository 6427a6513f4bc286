#include "treehead.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fsio.h"
#include "xalloc.h"
#include "banned.h"

static void key_id_of(const struct crypto_ed25519 *p, char id[TH_KEY_ID])
{
	uint8_t raw[32], d[SHA256_LEN];
	size_t n = sizeof raw;
	char hex[17];
	if (crypto_ed25519_public(p, raw) != 0)
		n = 0;
	sha256_once(raw, n, d);
	hex_encode(d, 8, hex);
	memcpy(id, "ed25519:", 8);
	memcpy(id + 8, hex, 17);
}

static enum mlk_status read_pem(const char *path, int priv,
				struct crypto_ed25519 **out,
				struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open key");
	struct stat st;
	if (priv && fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		close(fd);
		return mlk_error_set(e, MLK_INTEGRITY, path, 0,
				     "private key is readable by group or "
				     "others; chmod 600 it");
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return mlk_error_errno(e, path, "cannot open key");
	}
	struct crypto_ed25519 *p = crypto_ed25519_read_pem(f, priv);
	fclose(f);
	if (!p) {
		return mlk_error_set(e, MLK_INTEGRITY, path, 0,
				     "not an Ed25519 %s key in PEM",
				     priv ? "private" : "public");
	}
	*out = p;
	return MLK_OK;
}

static enum mlk_status write_pem(const char *path,
				 const struct crypto_ed25519 *p, int priv,
				 struct mlk_error *e)
{
	int fd;
	char *tmp;
	enum mlk_status s = fsio_temp_beside(path, &fd, &tmp, e);
	if (s != MLK_OK)
		return s;
	FILE *f = fdopen(fd, "w");
	int ok = f && crypto_ed25519_write_pem(f, p, priv) == 0;
	if (f && fflush(f) != 0)
		ok = 0;
	if (ok && fsync(fileno(f)) != 0)
		ok = 0;
	if (f)
		fclose(f);
	else
		close(fd);
	if (!ok) {
		unlink(tmp);
		free(tmp);
		return mlk_error_set(e, MLK_SYSTEM, path, 0,
				     "cannot write key");
	}
	if (!priv)
		chmod(tmp, 0644);
	/* link(2), not rename(2): a key made at the same moment by another
	 * process wins, and this one is dropped. */
	if (link(tmp, path) != 0 && errno != EEXIST) {
		s = mlk_error_errno(e, path, "cannot create key");
	} else {
		s = fsio_fsync_parent(path, e);
	}
	unlink(tmp);
	free(tmp);
	return s;
}

enum mlk_status th_key_lake(const struct lake *l, struct th_key *k,
			    struct mlk_error *e)
{
	memset(k, 0, sizeof *k);
	char *priv = lake_path(l, "keys/audit-ed25519.pem");
	char *pub = lake_path(l, "audit/checkpoint-key.pub");
	struct crypto_ed25519 *p = NULL;
	enum mlk_status s = MLK_OK;
	if (!fsio_exists(priv)) {
		p = crypto_ed25519_generate();
		if (!p)
			s = mlk_error_set(e, MLK_SYSTEM, priv, 0,
					  "cannot make an Ed25519 key");
		if (s == MLK_OK)
			s = write_pem(priv, p, 1, e);
		crypto_ed25519_free(p);
		p = NULL;
	}
	if (s == MLK_OK)
		s = read_pem(priv, 1, &p, e);
	if (s == MLK_OK && !fsio_exists(pub))
		s = write_pem(pub, p, 0, e);
	if (s == MLK_OK) {
		k->pkey = p;
		k->priv = 1;
		key_id_of(p, k->id);
	} else {
		crypto_ed25519_free(p);
	}
	free(priv);
	free(pub);
	return s;
}

enum mlk_status th_key_load_pub(const char *path, struct th_key *k,
				struct mlk_error *e)
{
	memset(k, 0, sizeof *k);
	struct crypto_ed25519 *p;
	enum mlk_status s = read_pem(path, 0, &p, e);
	if (s != MLK_OK)
		return s;
	k->pkey = p;
	key_id_of(p, k->id);
	return MLK_OK;
}

void th_key_release(struct th_key *k)
{
	crypto_ed25519_free(k->pkey);
	k->pkey = NULL;
}

static void signed_text(const struct tree_head *h, struct buf *b)
{
	char hex[SHA256_HEX];
	hex_encode(h->root, MERKLE_HASH, hex);
	buf_addf(b, "mlk-audit tree head v1\n%llu\n%s\n%s\n%s\n",
		 (unsigned long long)h->size, hex, h->time, h->key_id);
}

enum mlk_status th_sign(const struct th_key *k, struct tree_head *h,
			struct mlk_error *e)
{
	memcpy(h->key_id, k->id, TH_KEY_ID);
	struct buf b = BUF_INIT;
	signed_text(h, &b);
	int ok = k->priv &&
		 crypto_ed25519_sign(k->pkey, b.data, b.len, h->sig) == 0;
	buf_release(&b);
	if (!ok)
		return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
				     "cannot sign the tree head");
	return MLK_OK;
}

int th_verify(const struct th_key *k, const struct tree_head *h)
{
	if (strcmp(h->key_id, k->id) != 0)
		return 0;
	struct buf b = BUF_INIT;
	signed_text(h, &b);
	int ok = crypto_ed25519_verify(k->pkey, b.data, b.len, h->sig);
	buf_release(&b);
	return ok;
}

void th_format(const struct tree_head *h, struct buf *out)
{
	char root[SHA256_HEX], sig[2 * TH_SIG + 1];
	hex_encode(h->root, MERKLE_HASH, root);
	hex_encode(h->sig, TH_SIG, sig);
	buf_addf(out, "{\"tree_size\":%llu,\"root_hash\":\"%s\",\"time\":\"%s\","
		 "\"key_id\":\"%s\",\"signature\":\"%s\"}",
		 (unsigned long long)h->size, root, h->time, h->key_id, sig);
}

static int get_str(const struct rec *r, const char *key, char *out,
		   size_t max)
{
	int t = rec_get(r, 0, key);
	if (t < 0 || rec_type(r, t) != REC_STRING)
		return -1;
	size_t n;
	const char *p = rec_raw(r, t, &n);
	if (n >= max || memchr(p, '\\', n))
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

enum mlk_status th_parse(const char *text, size_t len, struct tree_head *h,
			 const char *file, long long line,
			 struct mlk_error *e)
{
	struct rec r;
	rec_init(&r);
	memset(h, 0, sizeof *h);
	struct mlk_error pe = MLK_ERROR_INIT;
	char root[SHA256_HEX], sig[2 * TH_SIG + 1], num[24];
	enum mlk_status s = MLK_INTEGRITY;
	if (rec_parse(&r, text, len, &pe) != MLK_OK)
		goto bad;
	int t = rec_get(&r, 0, "tree_size");
	size_t n;
	const char *p;
	if (t < 0 || rec_type(&r, t) != REC_PRIMITIVE)
		goto bad;
	p = rec_raw(&r, t, &n);
	if (n == 0 || n >= sizeof num || strspn(p, "0123456789") < n)
		goto bad;
	memcpy(num, p, n);
	num[n] = '\0';
	h->size = strtoull(num, NULL, 10);
	if (get_str(&r, "root_hash", root, sizeof root) ||
	    hex_decode(root, h->root, MERKLE_HASH) ||
	    get_str(&r, "time", h->time, sizeof h->time) ||
	    get_str(&r, "key_id", h->key_id, sizeof h->key_id) ||
	    get_str(&r, "signature", sig, sizeof sig) ||
	    hex_decode(sig, h->sig, TH_SIG))
		goto bad;
	s = MLK_OK;
bad:
	rec_release(&r);
	if (s != MLK_OK)
		mlk_error_set(e, MLK_INTEGRITY, file, line,
			      "not a tree head (want tree_size, root_hash, "
			      "time, key_id, signature)");
	return s;
}
