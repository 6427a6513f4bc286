/* OpenSSL 3 marks the low-level SHA-256 calls deprecated; see crypto.h. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "xalloc.h"
#include "banned.h"

void sha256_init(struct sha256_ctx *c)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1) {
		/* Only allocation can fail here. */
		xmalloc((size_t)-1);
	}
	c->md = m;
}

void sha256_update(struct sha256_ctx *c, const void *p, size_t n)
{
	if (n)
		EVP_DigestUpdate(c->md, p, n);
}

void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN])
{
	unsigned int len = SHA256_LEN;
	EVP_DigestFinal_ex(c->md, out, &len);
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
}

void sha256_abort(struct sha256_ctx *c)
{
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
}

void sha256_once(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	unsigned int len = SHA256_LEN;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void sha256_hex_once(const void *p, size_t n, char hex[SHA256_HEX])
{
	uint8_t d[SHA256_LEN];
	sha256_once(p, n, d);
	hex_encode(d, SHA256_LEN, hex);
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexdig(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *hex, uint8_t *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int a = hexdig(hex[2 * i]), b = hexdig(hex[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

enum mlk_status sha256_file(const char *path, char hex[SHA256_HEX],
			    unsigned long long *size, struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open");
	struct sha256_ctx c;
	sha256_init(&c);
	static __thread char chunk[1 << 16];
	unsigned long long total = 0;
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			sha256_abort(&c);
			close(fd);
			return mlk_error_errno(e, path, "read error");
		}
		if (r == 0)
			break;
		sha256_update(&c, chunk, (size_t)r);
		total += (unsigned long long)r;
	}
	close(fd);
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, SHA256_LEN, hex);
	if (size)
		*size = total;
	return MLK_OK;
}

enum mlk_status crypto_random(void *p, size_t n, struct mlk_error *e)
{
	if (RAND_bytes(p, (int)n) != 1)
		return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
				     "no random bytes available");
	return MLK_OK;
}

void crypto_key_id(const uint8_t key[MLK_KEY_LEN], char *id, size_t idlen)
{
	/* The id names a key without revealing it: a hash of a hash. */
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX];
	sha256_once(key, MLK_KEY_LEN, d);
	sha256_once(d, SHA256_LEN, d);
	hex_encode(d, 8, hex);
	snprintf(id, idlen, "k-%s", hex);
}

void crypto_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

enum mlk_status crypto_key_create(const char *path, char *id, size_t idlen,
				  struct mlk_error *e)
{
	uint8_t key[MLK_KEY_LEN];
	if (crypto_random(key, sizeof key, e) != MLK_OK)
		return e->status;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			    O_CLOEXEC, 0600);
	if (fd < 0) {
		crypto_wipe(key, sizeof key);
		return mlk_error_errno(e, path, "cannot create key file");
	}
	ssize_t w = write(fd, key, sizeof key);
	int ok = w == (ssize_t)sizeof key && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		crypto_wipe(key, sizeof key);
		unlink(path);
		return mlk_error_errno(e, path, "cannot write key file");
	}
	crypto_key_id(key, id, idlen);
	crypto_wipe(key, sizeof key);
	return MLK_OK;
}

enum mlk_status crypto_key_load(const char *path, uint8_t key[MLK_KEY_LEN],
				struct mlk_error *e)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return mlk_error_errno(e, path, "cannot open key file");
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return mlk_error_errno(e, path, "cannot stat key file");
	}
	if (st.st_mode & 077) {
		close(fd);
		return mlk_error_set(e, MLK_DENIED, path, 0,
				     "key file is readable by group or others "
				     "(mode %03o); chmod 600 it",
				     (unsigned)(st.st_mode & 0777));
	}
	if (st.st_size != MLK_KEY_LEN) {
		close(fd);
		return mlk_error_set(e, MLK_INTEGRITY, path, 0,
				     "key file is not %d bytes", MLK_KEY_LEN);
	}
	ssize_t r = read(fd, key, MLK_KEY_LEN);
	close(fd);
	if (r != MLK_KEY_LEN) {
		crypto_wipe(key, MLK_KEY_LEN);
		return mlk_error_errno(e, path, "cannot read key file");
	}
	return MLK_OK;
}

/* --- one-shot SHA-256 without EVP ------------------------------------ */

void sha256_raw(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, p, n);
	SHA256_Final(out, &c);
}

void sha256_raw2(const void *a, size_t an, const void *b, size_t bn,
		 uint8_t out[SHA256_LEN])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, a, an);
	if (bn)
		SHA256_Update(&c, b, bn);
	SHA256_Final(out, &c);
}

/* --- HMAC-SHA256 ----------------------------------------------------- */

struct crypto_hmac {
	EVP_MAC *mac;        /* the template's only */
	EVP_MAC_CTX *ctx;
};

struct crypto_hmac *crypto_hmac_new(const uint8_t key[MLK_KEY_LEN],
				    struct mlk_error *e)
{
	struct crypto_hmac *h = xcalloc(1, sizeof *h);
	h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (h->mac)
		h->ctx = EVP_MAC_CTX_new(h->mac);
	OSSL_PARAM prm[2];
	prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						  (char *)"SHA256", 0);
	prm[1] = OSSL_PARAM_construct_end();
	if (!h->ctx || EVP_MAC_init(h->ctx, key, MLK_KEY_LEN, prm) != 1) {
		mlk_error_set(e, MLK_SYSTEM, NULL, 0,
			      "cannot set up HMAC-SHA256");
		crypto_hmac_free(h);
		return NULL;
	}
	return h;
}

struct crypto_hmac *crypto_hmac_dup(const struct crypto_hmac *t)
{
	struct crypto_hmac *h = xcalloc(1, sizeof *h);
	h->ctx = EVP_MAC_CTX_dup(t->ctx);
	if (!h->ctx)
		xmalloc((size_t)-1);   /* only allocation can fail */
	return h;
}

void crypto_hmac2(struct crypto_hmac *h, const void *a, size_t an,
		  const void *b, size_t bn, uint8_t out[SHA256_LEN])
{
	size_t mdlen = 0;
	/* A NULL key re-uses the key the context was set up with. */
	if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(h->ctx, a, an) != 1 ||
	    EVP_MAC_update(h->ctx, b, bn) != 1 ||
	    EVP_MAC_final(h->ctx, out, &mdlen, SHA256_LEN) != 1)
		xmalloc((size_t)-1);   /* only allocation can fail */
}

void crypto_hmac_free(struct crypto_hmac *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->ctx);
	EVP_MAC_free(h->mac);
	free(h);
}

/* --- Ed25519 --------------------------------------------------------- */

/* The struct is the EVP_PKEY itself, under a name of our own. */
#define PK(k) ((EVP_PKEY *)(k))

struct crypto_ed25519 *crypto_ed25519_generate(void)
{
	return (struct crypto_ed25519 *)EVP_PKEY_Q_keygen(NULL, NULL,
							  "ED25519");
}

struct crypto_ed25519 *crypto_ed25519_read_pem(FILE *f, int priv)
{
	EVP_PKEY *p = priv ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
			   : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (p && EVP_PKEY_get_base_id(p) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(p);
		p = NULL;
	}
	return (struct crypto_ed25519 *)p;
}

int crypto_ed25519_write_pem(FILE *f, const struct crypto_ed25519 *k,
			     int priv)
{
	int ok = priv ? PEM_write_PrivateKey(f, PK(k), NULL, NULL, 0, NULL,
					     NULL)
		      : PEM_write_PUBKEY(f, PK(k));
	return ok == 1 ? 0 : -1;
}

int crypto_ed25519_public(const struct crypto_ed25519 *k, uint8_t pub[32])
{
	size_t n = 32;
	return EVP_PKEY_get_raw_public_key(PK(k), pub, &n) == 1 && n == 32
		       ? 0 : -1;
}

int crypto_ed25519_sign(const struct crypto_ed25519 *k, const void *msg,
			size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t sn = 64;
	int ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, PK(k)) == 1 &&
		 EVP_DigestSign(c, sig, &sn, msg, n) == 1 && sn == 64;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

int crypto_ed25519_verify(const struct crypto_ed25519 *k, const void *msg,
			  size_t n, const uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, PK(k)) == 1 &&
		 EVP_DigestVerify(c, sig, 64, msg, n) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

void crypto_ed25519_free(struct crypto_ed25519 *k)
{
	EVP_PKEY_free(PK(k));
}
/* AES-256-GCM. */

enum mlk_status aead_seal(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const void *p, size_t n,
			  uint8_t *sealed, struct mlk_error *e)
{
	if (crypto_random(sealed, 12, e) != MLK_OK)
		return e->status;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok = c &&
		EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, sealed) &&
		EVP_EncryptUpdate(c, NULL, &len, aad, (int)aadn) &&
		EVP_EncryptUpdate(c, sealed + 12, &len, p, (int)n) &&
		EVP_EncryptFinal_ex(c, sealed + 12 + len, &len) &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16,
				    sealed + 12 + n);
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return mlk_error_set(e, MLK_SYSTEM, NULL, 0,
				     "AES-256-GCM encryption failed");
	return MLK_OK;
}

enum mlk_status aead_open(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const uint8_t *sealed, size_t n,
			  uint8_t *plain, struct mlk_error *e)
{
	if (n < AEAD_OVERHEAD)
		return mlk_error_set(e, MLK_INTEGRITY, NULL, 0,
				     "sealed value too short");
	size_t pn = n - AEAD_OVERHEAD;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok = c &&
		EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, sealed) &&
		EVP_DecryptUpdate(c, NULL, &len, aad, (int)aadn) &&
		EVP_DecryptUpdate(c, plain, &len, sealed + 12, (int)pn) &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
				    (void *)(sealed + 12 + pn)) &&
		EVP_DecryptFinal_ex(c, plain + len, &len) > 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		crypto_wipe(plain, pn);
		return mlk_error_set(e, MLK_INTEGRITY, NULL, 0,
				     "sealed value does not verify");
	}
	return MLK_OK;
}
