/* The product of two character automata (grammar/json_schema/char_dfa.py's CharDfa), pruned: the loop that
 * most of a pattern-heavy schema's compile spent in Python. Same states in the same order as the Python
 * construction it replaces, so the grammars written from it are byte-identical. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "char_automata.h"
#include "flat_builder.h" /* Ints, fb_put_int */
#include "native.h"

/* Open addressing from the pair (a, b) to its state number; `size` a power of two over twice the states. */
typedef struct {
    int64_t *keys;
    int32_t *values;
    size_t mask;
} PairMap;

static int32_t *pair_slot(PairMap *map, int64_t key, int *found)
{
    uint64_t hash = (uint64_t)key * 0x9E3779B97F4A7C15u;
    size_t slot = (size_t)(hash >> 17) & map->mask;
    while (map->keys[slot] != -1 && map->keys[slot] != key)
        slot = (slot + 1) & map->mask;
    *found = map->keys[slot] == key;
    map->keys[slot] = key;
    return &map->values[slot];
}

/* dfa_product(transitions_a, accepting_a, transitions_b, accepting_b, max_states)
 *     -> (transitions, accepting) | None */
PyObject *edge_dfa_product(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *rows_a, *accepting_a, *rows_b, *accepting_b, *result = NULL;
    long max_states;
    if (!PyArg_ParseTuple(args, "OOOOl", &rows_a, &accepting_a, &rows_b, &accepting_b, &max_states))
        return NULL;
    if (max_states < 1 || max_states > MAX_STATES_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "max_states must be positive and at most 2**24");
        return NULL;
    }
    Dfa a, b;
    int read_a = dfa_read(rows_a, accepting_a, &a);
    int read_b = read_a && dfa_read(rows_b, accepting_b, &b);
    if (!read_a || !read_b) {
        dfa_free(&a);
        if (read_a)
            dfa_free(&b);
        return NULL;
    }
    Ints out = {0}; /* (low, high, target) triples */
    size_t map_size = 1;
    while (map_size < (size_t)max_states * 2)
        map_size <<= 1;
    PairMap map = {malloc(map_size * sizeof(int64_t)), malloc(map_size * sizeof(int32_t)), map_size - 1};
    int32_t *pair_a = malloc((size_t)max_states * sizeof(int32_t)), *pair_b = malloc((size_t)max_states * sizeof(int32_t));
    int32_t *starts = malloc(((size_t)max_states + 1) * sizeof(int32_t));
    unsigned char *accepting = NULL;
    if (!map.keys || !map.values || !pair_a || !pair_b || !starts) {
        PyErr_NoMemory();
        goto done;
    }
    memset(map.keys, 0xff, map_size * sizeof(int64_t));
    int32_t n = 1;
    int found;
    *pair_slot(&map, 0, &found) = 0;
    pair_a[0] = pair_b[0] = 0;
    int too_big = a.n_states == 0 || b.n_states == 0 ? -1 : 0;
    Py_BEGIN_ALLOW_THREADS /* the loop touches no Python object: other threads run meanwhile */
    for (int32_t state = 0; state < n && too_big == 0; state++) {
        /* Both rows are sorted and disjoint: one sweep finds every overlap, in order. */
        starts[state] = (int32_t)(out.len / 3);
        Py_ssize_t i = a.starts[pair_a[state]], i_end = a.starts[pair_a[state] + 1];
        Py_ssize_t j = b.starts[pair_b[state]], j_end = b.starts[pair_b[state] + 1];
        while (i < i_end && j < j_end) {
            int32_t low = a.low[i] > b.low[j] ? a.low[i] : b.low[j];
            int32_t high = a.high[i] < b.high[j] ? a.high[i] : b.high[j];
            if (low <= high) {
                int64_t key = (int64_t)a.target[i] * (int64_t)b.n_states + (int64_t)b.target[j];
                int32_t *number = pair_slot(&map, key, &found);
                if (!found) {
                    if (n >= max_states) {
                        too_big = 1;
                        break;
                    }
                    pair_a[n] = a.target[i];
                    pair_b[n] = b.target[j];
                    *number = n++;
                }
                if (fb_put_int(&out, low) < 0 || fb_put_int(&out, high) < 0 || fb_put_int(&out, *number) < 0) {
                    too_big = -2; /* out of memory, said once the GIL is back */
                    break;
                }
            }
            int32_t high_a = a.high[i], high_b = b.high[j];
            if (high_a <= high_b)
                i++;
            if (high_b <= high_a)
                j++;
        }
    }
    if (too_big == -1)
        n = 0;
    if (too_big <= 0) {
        starts[n] = (int32_t)(out.len / 3);
        accepting = calloc((size_t)n + 1, 1);
        for (int32_t s = 0; accepting && s < n; s++)
            accepting[s] = a.accepting[pair_a[s]] && b.accepting[pair_b[s]];
        if (!accepting || !dfa_prune(&n, starts, out.data, accepting))
            too_big = -2;
    }
    Py_END_ALLOW_THREADS
    if (too_big == -2)
        PyErr_NoMemory();
    else if (too_big == 1)
        result = Py_NewRef(Py_None);
    else
        result = dfa_result(n, starts, out.data, accepting);
done:
    dfa_free(&a);
    dfa_free(&b);
    free(out.data);
    free(map.keys);
    free(map.values);
    free(pair_a);
    free(pair_b);
    free(starts);
    free(accepting);
    return result;
}
