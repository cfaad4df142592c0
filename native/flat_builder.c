/* The flat grammar under construction (grammar/ir.py's layout, as ir._Builder makes it): growable arrays,
 * hash tables, rules and their helper rules shared by key, byte classes shared by their 256 bits, and code point
 * classes split into UTF-8 byte-range sequences in utf8.py's order, so the arrays come out element for element
 * the same as the Python builder's. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flat_builder.h"

/* ------------------------------------------------------------------------------------------ containers */

int fb_grow(void **data, Py_ssize_t *cap, Py_ssize_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    Py_ssize_t cap2 = *cap ? *cap : 8;
    while (cap2 < need)
        cap2 *= 2;
    void *moved = realloc(*data, (size_t)cap2 * item);
    if (moved == NULL)
        return GIVE_UP;
    *data = moved;
    *cap = cap2;
    return 0;
}

int fb_push(Elems *v, int32_t kind, int32_t value)
{
    if (fb_grow((void **)&v->data, &v->cap, v->len + 1, sizeof(Elem)) < 0)
        return GIVE_UP;
    v->data[v->len].kind = kind;
    v->data[v->len++].value = value;
    return 0;
}

int fb_extend(Elems *v, const Elem *items, Py_ssize_t n)
{
    if (n == 0) /* items may be NULL then, which memcpy may not be given */
        return 0;
    if (fb_grow((void **)&v->data, &v->cap, v->len + n, sizeof(Elem)) < 0)
        return GIVE_UP;
    memcpy(v->data + v->len, items, (size_t)n * sizeof(Elem));
    v->len += n;
    return 0;
}

int fb_add_option(Options *o, Elems *moved)
{
    if (fb_grow((void **)&o->data, &o->cap, o->len + 1, sizeof(Elems)) < 0)
        return GIVE_UP;
    o->data[o->len++] = *moved;
    memset(moved, 0, sizeof(Elems));
    return 0;
}

void fb_free_options(Options *o)
{
    for (Py_ssize_t i = 0; i < o->len; i++)
        free(o->data[i].data);
    free(o->data);
    memset(o, 0, sizeof(Options));
}

int fb_put_int(Ints *v, int32_t value)
{
    if (fb_grow((void **)&v->data, &v->cap, v->len + 1, sizeof(int32_t)) < 0)
        return GIVE_UP;
    v->data[v->len++] = value;
    return 0;
}

uint64_t fb_hash_bytes(const uint8_t *key, Py_ssize_t size)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < size; i++)
        h = (h ^ key[i]) * 1099511628211ULL;
    return h | 1; /* 0 marks an empty slot */
}

/* The value stored under `key`, or -1. */
int32_t fb_table_get(const Table *t, const void *key, Py_ssize_t size, uint64_t hash)
{
    if (t->cap == 0)
        return -1;
    for (Py_ssize_t i = (Py_ssize_t)(hash & (uint64_t)(t->cap - 1));; i = (i + 1) & (t->cap - 1)) {
        const Slot *s = &t->slots[i];
        if (s->hash == 0)
            return -1;
        if (s->hash == hash && s->size == size && memcmp(s->key, key, (size_t)size) == 0)
            return s->value;
    }
}

int fb_table_put(Table *t, const void *key, Py_ssize_t size, uint64_t hash, int32_t value)
{
    if ((t->used + 1) * 2 > t->cap) {
        Py_ssize_t cap2 = t->cap ? t->cap * 2 : 64;
        Slot *slots = calloc((size_t)cap2, sizeof(Slot));
        if (slots == NULL)
            return GIVE_UP;
        for (Py_ssize_t i = 0; i < t->cap; i++) {
            if (t->slots[i].hash == 0)
                continue;
            Py_ssize_t j = (Py_ssize_t)(t->slots[i].hash & (uint64_t)(cap2 - 1));
            while (slots[j].hash != 0)
                j = (j + 1) & (cap2 - 1);
            slots[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap2;
    }
    uint8_t *stored = (uint8_t *)key;
    if (t->owns_keys) {
        stored = malloc((size_t)size + 1);
        if (stored == NULL)
            return GIVE_UP;
        memcpy(stored, key, (size_t)size);
    }
    Py_ssize_t i = (Py_ssize_t)(hash & (uint64_t)(t->cap - 1));
    while (t->slots[i].hash != 0)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = (Slot){hash, stored, size, value};
    t->used++;
    return 0;
}

void fb_free_table(Table *t)
{
    if (t->owns_keys)
        for (Py_ssize_t i = 0; i < t->cap; i++)
            free(t->slots[i].key);
    free(t->slots);
}

/* ------------------------------------------------------------------------------------------ rules, classes */

int32_t fb_new_rule(Lowerer *L, Options *alternatives)
{
    Py_ssize_t cap = L->cap_rules;
    if (fb_grow((void **)&L->rules, &L->cap_rules, L->n_rules + 1, sizeof(Options)) < 0)
        return GIVE_UP;
    if (L->cap_rules != cap) { /* parents grows with rules */
        void *moved = realloc(L->parents, (size_t)L->cap_rules * sizeof(int32_t));
        if (moved == NULL)
            return GIVE_UP;
        L->parents = moved;
    }
    L->rules[L->n_rules] = *alternatives;
    memset(alternatives, 0, sizeof(Options));
    L->parents[L->n_rules] = L->current;
    return (int32_t)L->n_rules++;
}

/* The helper rule of `key` (a tag, then element runs), made with `alternatives` if new (ir._Builder.helper). */
int32_t fb_helper(Lowerer *L, Ints *key, Options *alternatives)
{
    Py_ssize_t size = key->len * (Py_ssize_t)sizeof(int32_t);
    uint64_t hash = fb_hash_bytes((const uint8_t *)key->data, size);
    int32_t found = fb_table_get(&L->helpers, key->data, size, hash);
    if (found >= 0) {
        fb_free_options(alternatives);
        return found;
    }
    found = fb_new_rule(L, alternatives);
    if (found < 0 || fb_table_put(&L->helpers, key->data, size, hash, found) < 0)
        return GIVE_UP;
    return found;
}

int fb_key_elems(Ints *key, const Elems *run)
{
    if (fb_put_int(key, (int32_t)run->len) < 0)
        return GIVE_UP;
    for (Py_ssize_t i = 0; i < run->len; i++)
        if (fb_put_int(key, run->data[i].kind) < 0 || fb_put_int(key, run->data[i].value) < 0)
            return GIVE_UP;
    return 0;
}

/* One element for `options`: the only one's elements, else a helper keyed by `tag` (ALT or CLASS). */
int fb_emit_options(Lowerer *L, int32_t tag, Options *options, Elems *out)
{
    if (options->len == 1) {
        int failed = fb_extend(out, options->data[0].data, options->data[0].len);
        fb_free_options(options);
        return failed;
    }
    Ints key = {0};
    int32_t rule = GIVE_UP;
    if (fb_put_int(&key, tag) == 0 && fb_put_int(&key, (int32_t)options->len) == 0) {
        Py_ssize_t i = 0;
        while (i < options->len && fb_key_elems(&key, &options->data[i]) == 0)
            i++;
        if (i == options->len)
            rule = fb_helper(L, &key, options);
    }
    free(key.data);
    fb_free_options(options);
    return rule < 0 ? GIVE_UP : fb_push(out, K_RULE, rule);
}

int32_t fb_class_id(Lowerer *L, const uint8_t bits[32])
{
    uint64_t hash = fb_hash_bytes(bits, 32);
    int32_t found = fb_table_get(&L->classes, bits, 32, hash);
    if (found >= 0)
        return found;
    if (fb_grow((void **)&L->class_bits, &L->cap_classes, L->n_classes + 1, 32) < 0)
        return GIVE_UP;
    memcpy(L->class_bits + 32 * L->n_classes, bits, 32);
    found = (int32_t)L->n_classes++;
    return fb_table_put(&L->classes, bits, 32, hash, found) < 0 ? GIVE_UP : found;
}

int fb_emit_byte_range(Lowerer *L, int low, int high, Elems *out)
{
    if (low == high && L->byte_class[low] >= 0)
        return fb_push(out, K_BYTES, L->byte_class[low]);
    uint8_t bits[32] = {0};
    for (int b = low; b <= high; b++)
        bits[b >> 3] |= (uint8_t)(1u << (b & 7));
    int32_t id = fb_class_id(L, bits);
    if (id >= 0 && low == high)
        L->byte_class[low] = id;
    return id < 0 ? GIVE_UP : fb_push(out, K_BYTES, id);
}

int fb_utf8_encode(uint32_t cp, uint8_t out[4])
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* UTF-8 byte-range sequences of the code points low..high in utf8.py's order (its `_split`): each sequence is
 * appended to `seqs` as its length, then (low byte, high byte) pairs. */
static int split(uint32_t low, uint32_t high, Ints *seqs)
{
    static const uint32_t limits[3] = {0x7F, 0x7FF, 0xFFFF};
    if (low > high)
        return 0;
    if (low <= 0xDFFF && high >= 0xD800) {
        if (low < 0xD800 && split(low, 0xD7FF, seqs) < 0)
            return GIVE_UP;
        return high > 0xDFFF ? split(0xE000, high, seqs) : 0;
    }
    for (int i = 0; i < 3; i++)
        if (low <= limits[i] && limits[i] < high)
            return split(low, limits[i], seqs) < 0 ? GIVE_UP : split(limits[i] + 1, high, seqs);
    uint8_t first[4], last[4];
    int length = fb_utf8_encode(low, first);
    for (int continuation = 1; continuation < length; continuation++) {
        uint32_t mask = (1u << (6 * continuation)) - 1;
        if ((low & ~mask) != (high & ~mask)) {
            if (low & mask)
                return split(low, low | mask, seqs) < 0 ? GIVE_UP : split((low | mask) + 1, high, seqs);
            if ((high & mask) != mask)
                return split(low, (high & ~mask) - 1, seqs) < 0 ? GIVE_UP : split(high & ~mask, high, seqs);
        }
    }
    fb_utf8_encode(high, last);
    if (fb_put_int(seqs, length) < 0)
        return GIVE_UP;
    for (int i = 0; i < length; i++)
        if (fb_put_int(seqs, first[i]) < 0 || fb_put_int(seqs, last[i]) < 0)
            return GIVE_UP;
    return 0;
}

static int compare_ranges(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* A code point class (`ranges`: n (low, high) pairs, sorted here) as ir._Builder.emit_class writes it. */
int fb_emit_class(Lowerer *L, uint32_t *ranges, Py_ssize_t n, int negated, Elems *out)
{
    if (n > 1) /* ranges is NULL when there are none */
        qsort(ranges, (size_t)n, 2 * sizeof(uint32_t), compare_ranges);
    Py_ssize_t merged = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (merged && ranges[2 * i] <= ranges[2 * merged - 1] + 1) {
            if (ranges[2 * i + 1] > ranges[2 * merged - 1])
                ranges[2 * merged - 1] = ranges[2 * i + 1];
        } else {
            ranges[2 * merged] = ranges[2 * i];
            ranges[2 * merged + 1] = ranges[2 * i + 1];
            merged++;
        }
    }
    Ints seqs = {0};
    int failed = 0;
    uint32_t next_low = 0;
    for (Py_ssize_t i = 0; i < merged && !failed; i++) {
        if (!negated)
            failed = split(ranges[2 * i], ranges[2 * i + 1], &seqs);
        else if (ranges[2 * i] > next_low)
            failed = split(next_low, ranges[2 * i] - 1, &seqs);
        next_low = ranges[2 * i + 1] + 1;
    }
    if (negated && next_low <= MAX_CODE_POINT && !failed)
        failed = split(next_low, MAX_CODE_POINT, &seqs);
    Options options = {0};
    uint8_t single[32] = {0};
    int has_single = 0;
    for (Py_ssize_t at = 0; at < seqs.len && !failed; at += 1 + 2 * seqs.data[at]) {
        int length = seqs.data[at];
        if (length == 1) {
            for (int32_t b = seqs.data[at + 1]; b <= seqs.data[at + 2]; b++)
                single[b >> 3] |= (uint8_t)(1u << (b & 7));
            has_single = 1;
            continue;
        }
        Elems option = {0};
        for (int i = 0; i < length && !failed; i++)
            failed = fb_emit_byte_range(L, seqs.data[at + 1 + 2 * i], seqs.data[at + 2 + 2 * i], &option);
        failed = failed || fb_add_option(&options, &option);
        free(option.data);
    }
    free(seqs.data);
    if (!failed && has_single) { /* the one-byte set comes first, its id taken after the others' */
        Elems option = {0};
        int32_t id = fb_class_id(L, single);
        failed = id < 0 || fb_push(&option, K_BYTES, id) < 0 || fb_add_option(&options, &option) < 0;
        if (!failed) {
            Elems first = options.data[options.len - 1];
            memmove(options.data + 1, options.data, (size_t)(options.len - 1) * sizeof(Elems));
            options.data[0] = first;
        }
        free(option.data);
    }
    if (failed) {
        fb_free_options(&options);
        return GIVE_UP;
    }
    return fb_emit_options(L, TAG_CLASS, &options, out);
}
