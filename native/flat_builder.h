/* The builder of flat byte grammars (flat_builder.c), shared with the GBNF lowering (gbnf_lower.c) and the
 * grammar checks (grammar_checks.c). */
#ifndef EDGE_FLAT_BUILDER_H
#define EDGE_FLAT_BUILDER_H
#include <Python.h>
#include <stdint.h>

enum { K_END = 0, K_BYTES = 1, K_RULE = 2 };
enum { TAG_ALT = -1, TAG_CLASS = -2, TAG_GROUP = -3, TAG_OPTIONAL = -4, TAG_STAR = -5 }; /* helper key tags */
#define MAX_CODE_POINT 0x10FFFF
#define GIVE_UP (-1)
#define MAX_GROUP_DEPTH 100 /* deeper goes to the Python parser, whose recursion limit refuses it */

typedef struct { int32_t kind, value; } Elem;
typedef struct { Elem *data; Py_ssize_t len, cap; } Elems;
typedef struct { Elems *data; Py_ssize_t len, cap; } Options; /* a rule's alternatives */
typedef struct { int32_t *data; Py_ssize_t len, cap; } Ints;
typedef struct { uint64_t hash; uint8_t *key; Py_ssize_t size; int32_t value; } Slot;
typedef struct { Slot *slots; Py_ssize_t cap, used; int owns_keys; } Table;

typedef struct {
    Options *rules;
    int32_t *parents; /* per rule: the source rule a helper came from */
    Py_ssize_t n_rules, cap_rules, n_source;
    int32_t current;
    Table names, helpers, classes;
    uint8_t *class_bits; /* 32 bytes per class, in id order */
    int32_t byte_class[256]; /* the class of each single byte once made, else -1: literals are most bytes */
    Py_ssize_t n_classes, cap_classes;
    const uint8_t *p, *end;
    int depth; /* groups open at p */
    int64_t copies; /* items written out by repetition minimums so far */
    int32_t max_repetition; /* gbnf.MAX_REPETITION: the largest m or n of {m,n} */
    int64_t max_copies; /* ir.MAX_REPEATED_COPIES: the most items the minimums may write out in all */
} Lowerer;


int fb_grow(void **data, Py_ssize_t *cap, Py_ssize_t need, size_t item);
int fb_push(Elems *v, int32_t kind, int32_t value);
int fb_extend(Elems *v, const Elem *items, Py_ssize_t n);
int fb_add_option(Options *o, Elems *moved);
void fb_free_options(Options *o);
int fb_put_int(Ints *v, int32_t value);
uint64_t fb_hash_bytes(const uint8_t *key, Py_ssize_t size);
int32_t fb_table_get(const Table *t, const void *key, Py_ssize_t size, uint64_t hash);
int fb_table_put(Table *t, const void *key, Py_ssize_t size, uint64_t hash, int32_t value);
void fb_free_table(Table *t);
int32_t fb_new_rule(Lowerer *L, Options *alternatives);
int32_t fb_helper(Lowerer *L, Ints *key, Options *alternatives);
int fb_key_elems(Ints *key, const Elems *run);
int fb_emit_options(Lowerer *L, int32_t tag, Options *options, Elems *out);
int32_t fb_class_id(Lowerer *L, const uint8_t bits[32]);
int fb_emit_byte_range(Lowerer *L, int low, int high, Elems *out);
int fb_utf8_encode(uint32_t cp, uint8_t out[4]);
int fb_emit_class(Lowerer *L, uint32_t *ranges, Py_ssize_t n, int negated, Elems *out);
int flat_checks_pass(const uint8_t *kinds, const int32_t *values, const int32_t *rule_alts,
                     const int32_t *alt_starts, Py_ssize_t n_rules);

#endif
