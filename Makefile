# mlk — one non-recursive Makefile.
#
#   make            build bin/mlk-* (links common/libmlk.a)
#   make check      set-up, build, mandoc lint, every BATS test
#   make demo       set-up, build, a demo lake from synthetic data
#   make check SANITIZE=1   the same under ASan + UBSan
#   make fuzz FUZZ_SECONDS=60
#   make install PREFIX=/usr/local DESTDIR=
#
# Adding a binary: append it to BINS, add cmd/NAME.c and man/NAME.1, and a
# tests/NAME.bats file; `make check` lints the man page and checks that the
# usage text matches its SYNOPSIS.

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0

PKGS     := libarchive zlib yaml-0.1 libcrypto libdeflate htslib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
MLK_CFLAGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wvla -Wformat=2 \
	-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DMLK_VERSION='"$(VERSION)"' \
	-Icommon $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread

ifeq ($(SANITIZE),1)
UNIT_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS   := -O1 -g -fno-omit-frame-pointer
MLK_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
BUILD    := build/san
else
BUILD    := build/rel
endif

BINS     := mlk-ingest mlk-catalog
BINS += mlk-audit
BINS += mlk-sample
BINS += mlk-deid
BINS += mlk-snapshot
LDLIBS += -lm
LIB_SRC  := $(wildcard common/*.c)
LIB_OBJ  := $(patsubst common/%.c,$(BUILD)/common/%.o,$(LIB_SRC))
# The built-in de-identification profiles, compiled in from profiles/.
PROFILES := $(sort $(wildcard profiles/*.yaml))
LIB_OBJ  += $(BUILD)/profiles.o
# PS3.15 Table E.1-1 for common/dicomdeid.c, compiled in from profiles/.
LIB_OBJ  += $(BUILD)/dicom-e1-1.o
LIB      := $(BUILD)/libmlk.a
BIN_OUT  := $(addprefix bin/,$(BINS))
MAN      := $(wildcard man/*.[157])

all: $(BIN_OUT)

# bin/ always holds the flavour built last; the stamp makes a switch
# between SANITIZE=0 and SANITIZE=1 relink.
$(BUILD)/.stamp:
	@mkdir -p $(BUILD)/common $(BUILD)/cmd bin
	@rm -f build/*/.stamp
	@touch $@

$(BUILD)/common/%.o: common/%.c $(wildcard common/*.h) | $(BUILD)/.stamp
	$(CC) $(CFLAGS) $(HOT_$(notdir $*)) $(MLK_CFLAGS) -c -o $@ $<

# The tokenizer loop (jsmn, compiled inside record.c) gains ~10% at -O3.
ifneq ($(SANITIZE),1)
HOT_record := -O3
endif

$(BUILD)/cmd/%.o: cmd/%.c $(wildcard common/*.h) | $(BUILD)/.stamp
	$(CC) $(CFLAGS) $(MLK_CFLAGS) -c -o $@ $<

$(BUILD)/profiles.c: $(PROFILES) scripts/embed-profiles | $(BUILD)/.stamp
	sh scripts/embed-profiles $@ $(PROFILES)

$(BUILD)/profiles.o: $(BUILD)/profiles.c
	$(CC) $(CFLAGS) $(MLK_CFLAGS) -c -o $@ $<

$(BUILD)/dicom-e1-1.c: profiles/dicom-e1-1.tsv scripts/embed-e1-1 | $(BUILD)/.stamp
	sh scripts/embed-e1-1 $@ profiles/dicom-e1-1.tsv

$(BUILD)/dicom-e1-1.o: $(BUILD)/dicom-e1-1.c common/dicomdeid.h
	$(CC) $(CFLAGS) $(MLK_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

bin/%: $(BUILD)/cmd/%.o $(LIB) $(BUILD)/.stamp
	$(CC) $(CFLAGS) $(MLK_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

setup:
	@sh scripts/setup

check: setup
	@$(MAKE) --no-print-directory all
	@sh scripts/check-man
	@MLK_BIN=$(CURDIR)/bin MLK_LIB=$(LIB) UNIT_CFLAGS="$(UNIT_SAN)" \
	  sh scripts/run-tests

demo: setup
	@$(MAKE) --no-print-directory all
	@sh scripts/demo

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst scripts/fuzz/%.c,%,$(wildcard scripts/fuzz/fuzz-*.c))
fuzz:
	@mkdir -p build/fuzz
	@sh scripts/embed-profiles build/fuzz/profiles.c $(PROFILES)
	@sh scripts/embed-e1-1 build/fuzz/dicom-e1-1.c profiles/dicom-e1-1.tsv
	@for t in $(FUZZ_TARGETS); do \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DMLK_VERSION='"fuzz"' \
	    -Icommon $(PKG_CFLAGS) -o build/fuzz/$$t scripts/fuzz/$$t.c \
	    $(filter-out common/%main.c,$(LIB_SRC)) build/fuzz/profiles.c \
	    build/fuzz/dicom-e1-1.c \
	    $(LDLIBS) || exit 1; \
	  mkdir -p build/fuzz/$$t.corpus; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) build/fuzz/$$t.corpus \
	    scripts/fuzz/corpus/$$t || exit 1; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7 \
	  $(DESTDIR)$(PREFIX)/share/mlk
	install -m 0755 $(BIN_OUT) $(DESTDIR)$(PREFIX)/bin/
	for m in $(MAN); do s=$${m##*.}; \
	  install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

clean:
	rm -rf build bin

.PHONY: all setup check demo fuzz install clean
.SUFFIXES:
.PRECIOUS: $(BUILD)/cmd/%.o
