/*
 * banned.h — functions mlk code must not call.
 *
 * Included last by every .c file in common/ and cmd/.  Each banned name is
 * redefined to an undeclared identifier, so a use fails to compile with a
 * message that names the reason.  Use buf_*() or snprintf() instead.
 */
#ifndef MLK_BANNED_H
#define MLK_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef tmpnam
#define tmpnam(x) BANNED(tmpnam)
#undef mktemp
#define mktemp(x) BANNED(mktemp)
#undef rand
#define rand() BANNED(rand)
#undef atoi
#define atoi(x) BANNED(atoi)

#endif
