/* Compiler-written GBNF rules lowered straight to the flat byte grammar (grammar/ir.py's layout): the arrays
 * ir.compile_syntax builds from gbnf.parse_gbnf_rules' tree, element for element, with its two checks, in one
 * pass and without the GIL. Parsing and lowering were most of compiling a large JSON Schema in Python.
 * It takes the GBNF that compilers write (a body per rule on one line, no comments, no token references) and
 * gives up (returns None) on anything else, on a parse error and on a failed check: the Python path then says
 * what is wrong, so no error message is written twice. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flat_builder.h"
#include "native.h"

static int is_word(uint8_t c)
{
    return c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_repetition(const Lowerer *L)
{
    return L->p < L->end && (*L->p == '*' || *L->p == '+' || *L->p == '?' || *L->p == '{');
}

/* Spaces and tabs; a comment or a line break gives up (compilers write neither inside a body). */
static int skip_space(Lowerer *L)
{
    while (L->p < L->end && (*L->p == ' ' || *L->p == '\t'))
        L->p++;
    return L->p < L->end && (*L->p == '#' || *L->p == '\n' || *L->p == '\r') ? GIVE_UP : 0;
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One character of a literal or class: raw (valid UTF-8, as Python gives it) or escaped (as gbnf's parse_char). */
static int parse_char(Lowerer *L, uint32_t *cp)
{
    uint8_t c = *L->p;
    if (c != '\\') {
        int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (L->end - L->p < n)
            return GIVE_UP;
        uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (int i = 1; i < n; i++)
            v = (v << 6) | (L->p[i] & 0x3Fu);
        L->p += n;
        *cp = v;
        return 0;
    }
    if (L->end - L->p < 2)
        return GIVE_UP;
    uint8_t escape = L->p[1];
    int digits = escape == 'x' ? 2 : escape == 'u' ? 4 : escape == 'U' ? 8 : 0;
    if (digits) {
        if (L->end - L->p < 2 + digits)
            return GIVE_UP;
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = hex_value(L->p[2 + i]);
            if (h < 0)
                return GIVE_UP;
            v = (v << 4) | (uint32_t)h;
        }
        if (v > MAX_CODE_POINT || (v >= 0xD800 && v <= 0xDFFF))
            return GIVE_UP;
        L->p += 2 + digits;
        *cp = v;
        return 0;
    }
    static const char from[] = "trn\\\"[]-", to[] = "\t\r\n\\\"[]-";
    const char *found = memchr(from, escape, sizeof from - 1);
    if (escape == 0 || found == NULL)
        return GIVE_UP;
    *cp = (uint8_t)to[found - from];
    L->p += 2;
    return 0;
}

static int parse_literal(Lowerer *L, Elems *out)
{
    L->p++;
    while (L->p < L->end && *L->p != '"') {
        if (*L->p != '\\') { /* a raw character's UTF-8 bytes are the input's */
            if (fb_emit_byte_range(L, *L->p, *L->p, out) < 0)
                return GIVE_UP;
            L->p++;
            continue;
        }
        uint32_t cp;
        uint8_t bytes[4];
        if (parse_char(L, &cp) < 0)
            return GIVE_UP;
        for (int i = 0, n = fb_utf8_encode(cp, bytes); i < n; i++)
            if (fb_emit_byte_range(L, bytes[i], bytes[i], out) < 0)
                return GIVE_UP;
    }
    if (L->p >= L->end)
        return GIVE_UP;
    L->p++;
    return 0;
}

static int parse_class(Lowerer *L, Elems *out)
{
    Ints ranges = {0};
    int negated = 0, failed = 0;
    L->p++;
    if (L->p < L->end && *L->p == '^') {
        negated = 1;
        L->p++;
    }
    while (!failed && L->p < L->end && *L->p != ']') {
        uint32_t low, high;
        failed = parse_char(L, &low);
        high = low;
        if (!failed && L->end - L->p >= 2 && L->p[0] == '-' && L->p[1] != ']') {
            L->p++;
            failed = parse_char(L, &high) < 0 || high < low;
        }
        failed = failed || fb_put_int(&ranges, (int32_t)low) < 0 || fb_put_int(&ranges, (int32_t)high) < 0;
    }
    if (!failed && L->p < L->end) {
        L->p++;
        failed = fb_emit_class(L, (uint32_t *)ranges.data, ranges.len / 2, negated, out);
    } else {
        failed = GIVE_UP;
    }
    free(ranges.data);
    return failed ? GIVE_UP : 0;
}

static int parse_count(Lowerer *L, int32_t *value)
{
    const uint8_t *start = L->p;
    int32_t v = 0;
    for (; L->p < L->end && *L->p >= '0' && *L->p <= '9'; L->p++) {
        v = v * 10 + (*L->p - '0');
        if (v > L->max_repetition)
            return GIVE_UP;
    }
    *value = v;
    return L->p == start ? GIVE_UP : 0;
}

/* `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}`; `high` -1 for no maximum. */
static int parse_repetition(Lowerer *L, int32_t *low, int32_t *high)
{
    uint8_t c = *L->p++;
    if (c != '{') {
        *low = c == '+';
        *high = c == '?' ? 1 : -1;
        return 0;
    }
    if (skip_space(L) < 0 || parse_count(L, low) < 0 || skip_space(L) < 0 || L->p >= L->end)
        return GIVE_UP;
    if (*L->p == '}') {
        *high = *low;
    } else if (*L->p == ',') {
        L->p++;
        if (skip_space(L) < 0 || L->p >= L->end)
            return GIVE_UP;
        *high = -1;
        if (*L->p != '}' && (parse_count(L, high) < 0 || skip_space(L) < 0 || L->p >= L->end || *L->p != '}'))
            return GIVE_UP;
    } else {
        return GIVE_UP;
    }
    L->p++;
    return *high >= 0 && *high < *low ? GIVE_UP : 0;
}

/* The alternatives `run | ` into `options`. */
static int or_nothing(Options *options, const Elem *run, Py_ssize_t n)
{
    Elems first = {0}, empty = {0};
    if (fb_extend(&first, run, n) < 0 || fb_add_option(options, &first) < 0 || fb_add_option(options, &empty) < 0) {
        free(first.data);
        return GIVE_UP;
    }
    return 0;
}

/* `item` repeated low..high times, as ir._Builder.emit_repeat writes it. */
static int repeat(Lowerer *L, Elems *item, int32_t low, int32_t high)
{
    if (item->len == 0)
        return 0;
    if (item->len > 1) {
        Ints key = {0};
        Options group = {0};
        int32_t rule = GIVE_UP;
        if (fb_put_int(&key, TAG_GROUP) == 0 && fb_key_elems(&key, item) == 0 && fb_add_option(&group, item) == 0)
            rule = fb_helper(L, &key, &group);
        free(key.data);
        fb_free_options(&group);
        if (rule < 0 || fb_push(item, K_RULE, rule) < 0)
            return GIVE_UP;
    }
    L->copies += low;
    if (L->copies > L->max_copies)
        return GIVE_UP;
    Elem e = item->data[0];
    item->len = 0;
    for (int32_t i = 0; i < low; i++)
        if (fb_push(item, e.kind, e.value) < 0)
            return GIVE_UP;
    if (high < 0) { /* `S ::= item S | `, keyed by the item */
        int32_t key[3] = {TAG_STAR, e.kind, e.value};
        uint64_t hash = fb_hash_bytes((const uint8_t *)key, sizeof key);
        int32_t star = fb_table_get(&L->helpers, key, sizeof key, hash);
        if (star < 0) {
            Options none = {0};
            star = fb_new_rule(L, &none);
            if (star < 0 || fb_table_put(&L->helpers, key, sizeof key, hash, star) < 0)
                return GIVE_UP;
            Elem run[2] = {e, {K_RULE, star}};
            if (or_nothing(&L->rules[star], run, 2) < 0)
                return GIVE_UP;
        }
        return fb_push(item, K_RULE, star);
    }
    Elem tail = {-1, -1};
    for (int32_t i = 0; i < high - low; i++) {
        int32_t words[5] = {TAG_OPTIONAL, e.kind, e.value, tail.kind, tail.value};
        Ints key = {words, 5, 5};
        Options options = {0};
        Elem run[2] = {e, tail};
        int32_t rule = GIVE_UP;
        if (or_nothing(&options, run, tail.kind < 0 ? 1 : 2) == 0)
            rule = fb_helper(L, &key, &options);
        fb_free_options(&options);
        if (rule < 0)
            return GIVE_UP;
        tail.kind = K_RULE;
        tail.value = rule;
    }
    return tail.kind < 0 ? 0 : fb_push(item, tail.kind, tail.value);
}

static int parse_alternatives(Lowerer *L, Options *options);

static int parse_group(Lowerer *L, Elems *item)
{
    Options group = {0};
    L->p++;
    if (++L->depth > MAX_GROUP_DEPTH || skip_space(L) < 0 || parse_alternatives(L, &group) < 0 || L->p >= L->end ||
        *L->p != ')') {
        fb_free_options(&group);
        return GIVE_UP;
    }
    L->p++;
    L->depth--;
    return fb_emit_options(L, TAG_ALT, &group, item);
}

static int parse_sequence(Lowerer *L, Elems *out)
{
    Elems item = {0}; /* each item in turn: one buffer for the sequence, not an allocation per item */
    int failed = 0;
    while (!failed && L->p < L->end) {
        uint8_t c = *L->p;
        item.len = 0;
        if (c == '"') {
            failed = parse_literal(L, &item);
        } else if (c == '[') {
            failed = parse_class(L, &item);
        } else if (c == '.') {
            L->p++;
            failed = fb_emit_class(L, NULL, 0, 1, &item);
        } else if (is_word(c)) {
            const uint8_t *start = L->p;
            while (L->p < L->end && is_word(*L->p))
                L->p++;
            int32_t rule = fb_table_get(&L->names, start, L->p - start, fb_hash_bytes(start, L->p - start));
            failed = rule < 0 || fb_push(&item, K_RULE, rule) < 0;
        } else if (c == '(') {
            failed = parse_group(L, &item);
        } else {
            break; /* the sequence's end, or what gives up later: a token, a repetition of nothing */
        }
        failed = failed || skip_space(L) < 0;
        while (!failed && is_repetition(L)) {
            int32_t low, high;
            failed = parse_repetition(L, &low, &high) < 0 || repeat(L, &item, low, high) < 0 || skip_space(L) < 0;
        }
        failed = failed || fb_extend(out, item.data, item.len) < 0;
    }
    free(item.data);
    return failed ? GIVE_UP : 0;
}

static int parse_alternatives(Lowerer *L, Options *options)
{
    for (;;) {
        Elems sequence = {0};
        if (parse_sequence(L, &sequence) < 0 || fb_add_option(options, &sequence) < 0) {
            free(sequence.data);
            return GIVE_UP;
        }
        if (L->p >= L->end || *L->p != '|')
            return 0;
        L->p++;
        if (skip_space(L) < 0)
            return GIVE_UP;
    }
}

/* Every rule lowered into L; the index of `root`, or GIVE_UP. */
static int32_t lower(Lowerer *L, Py_ssize_t n, const char **names, const Py_ssize_t *name_sizes, const char **bodies,
                     const Py_ssize_t *body_sizes)
{
    int32_t root = GIVE_UP;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *name = (const uint8_t *)names[i];
        Options none = {0};
        uint64_t hash = fb_hash_bytes(name, name_sizes[i]);
        for (Py_ssize_t j = 0; j < name_sizes[i]; j++)
            if (!is_word(name[j]))
                return GIVE_UP;
        if (name_sizes[i] == 0 || fb_table_get(&L->names, name, name_sizes[i], hash) >= 0 ||
            fb_table_put(&L->names, name, name_sizes[i], hash, (int32_t)i) < 0 || fb_new_rule(L, &none) < 0)
            return GIVE_UP;
        if (name_sizes[i] == 4 && memcmp(name, "root", 4) == 0)
            root = (int32_t)i;
    }
    L->n_source = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        Options alternatives = {0};
        L->current = (int32_t)i;
        L->p = (const uint8_t *)bodies[i];
        L->end = L->p + body_sizes[i];
        if (skip_space(L) < 0 || parse_alternatives(L, &alternatives) < 0 || L->p != L->end) {
            fb_free_options(&alternatives);
            return GIVE_UP;
        }
        L->rules[i] = alternatives;
    }
    return root;
}

static void free_lowerer(Lowerer *L)
{
    for (Py_ssize_t i = 0; i < L->n_rules; i++)
        fb_free_options(&L->rules[i]);
    free(L->rules);
    free(L->parents);
    fb_free_table(&L->names);
    fb_free_table(&L->helpers);
    fb_free_table(&L->classes);
    free(L->class_bits);
}

typedef struct {
    uint8_t *kinds;
    int32_t *values, *rule_alts, *alt_starts;
    Py_ssize_t n_elements, n_alts;
} Flat;

/* The rules as ir._Builder.flatten lays them out: every alternative closed by END, in rule order. */
static int flatten(const Lowerer *L, Flat *F)
{
    F->n_elements = F->n_alts = 0;
    for (Py_ssize_t r = 0; r < L->n_rules; r++) {
        F->n_alts += L->rules[r].len;
        for (Py_ssize_t a = 0; a < L->rules[r].len; a++)
            F->n_elements += L->rules[r].data[a].len + 1;
    }
    if (F->n_elements > INT32_MAX || F->n_alts > INT32_MAX)
        return GIVE_UP;
    F->kinds = malloc((size_t)F->n_elements + 1);
    F->values = malloc(((size_t)F->n_elements + 1) * sizeof(int32_t));
    F->rule_alts = malloc(((size_t)L->n_rules + 1) * sizeof(int32_t));
    F->alt_starts = malloc(((size_t)F->n_alts + 1) * sizeof(int32_t));
    if (!F->kinds || !F->values || !F->rule_alts || !F->alt_starts)
        return GIVE_UP;
    Py_ssize_t element = 0, alt = 0;
    for (Py_ssize_t r = 0; r < L->n_rules; r++) {
        F->rule_alts[r] = (int32_t)alt;
        for (Py_ssize_t a = 0; a < L->rules[r].len; a++) {
            const Elems *run = &L->rules[r].data[a];
            F->alt_starts[alt++] = (int32_t)element;
            for (Py_ssize_t i = 0; i < run->len; i++) {
                F->kinds[element] = (uint8_t)run->data[i].kind;
                F->values[element++] = run->data[i].value;
            }
            F->kinds[element] = K_END;
            F->values[element++] = 0;
        }
    }
    F->rule_alts[L->n_rules] = (int32_t)alt;
    return 0;
}

/* The arrays as bytes (y# of a NULL pointer would be None: an empty array is "" here). */
static PyObject *flat_result(const Lowerer *L, const Flat *F, int32_t root)
{
    Py_ssize_t n_helpers = L->n_rules - L->n_source;
    const char *classes = L->n_classes ? (const char *)L->class_bits : "";
    return Py_BuildValue("(y#y#y#y#y#y#i)", (const char *)F->kinds, F->n_elements, (const char *)F->values,
                         F->n_elements * 4, (const char *)F->rule_alts, (L->n_rules + 1) * 4,
                         (const char *)F->alt_starts, F->n_alts * 4, classes, L->n_classes * 32,
                         (const char *)(L->parents + L->n_source), n_helpers * 4, root);
}

PyObject *edge_lower_gbnf(PyObject *self, PyObject *args)
{
    PyObject *names, *bodies, *result = NULL;
    int max_repetition;
    long long max_copies;
    if (!PyArg_ParseTuple(args, "O!O!iL:lower_gbnf", &PyTuple_Type, &names, &PyTuple_Type, &bodies,
                          &max_repetition, &max_copies))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(bodies) != n) {
        PyErr_SetString(PyExc_ValueError, "lower_gbnf needs one body per name");
        return NULL;
    }
    const char **texts = PyMem_Calloc((size_t)(2 * n + 1), sizeof(char *));
    Py_ssize_t *sizes = PyMem_Calloc((size_t)(2 * n + 1), sizeof(Py_ssize_t));
    if (texts == NULL || sizes == NULL) {
        PyMem_Free(texts);
        PyMem_Free(sizes);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < 2 * n; i++) {
        PyObject *text = PyTuple_GET_ITEM(i < n ? names : bodies, i < n ? i : i - n);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "lower_gbnf takes tuples of str");
            goto exit;
        }
        texts[i] = PyUnicode_AsUTF8AndSize(text, &sizes[i]);
        if (texts[i] == NULL) { /* a lone surrogate: the Python path says where */
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto exit;
        }
    }
    Lowerer L;
    Flat F;
    memset(&L, 0, sizeof L);
    memset(L.byte_class, 0xff, sizeof L.byte_class);
    memset(&F, 0, sizeof F);
    L.helpers.owns_keys = L.classes.owns_keys = 1;
    L.max_repetition = max_repetition;
    L.max_copies = max_copies;
    int32_t root;
    int passed = 0;
    Py_BEGIN_ALLOW_THREADS
    root = lower(&L, n, texts, sizes, texts + n, sizes + n);
    if (root >= 0 && flatten(&L, &F) == 0)
        passed = flat_checks_pass(F.kinds, F.values, F.rule_alts, F.alt_starts, L.n_rules);
    Py_END_ALLOW_THREADS
    result = passed ? flat_result(&L, &F, root) : Py_NewRef(Py_None);
    free_lowerer(&L);
    free(F.kinds);
    free(F.values);
    free(F.rule_alts);
    free(F.alt_starts);
exit:
    PyMem_Free(texts);
    PyMem_Free(sizes);
    return result;
}
