/* The product of two character automata (grammar/json_schema/char_dfa.py's CharDfa), pruned: the loop that
 * most of a pattern-heavy schema's compile spent in Python. Same states in the same order as the Python
 * construction it replaces, so the grammars written from it are byte-identical. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "char_automata.h"
#include "native.h"

typedef struct {
    Py_ssize_t count, room;
    int32_t *low, *high, *target;
} Rows;

static int rows_push(Rows *rows, int32_t low, int32_t high, int32_t target)
{
    if (rows->count == rows->room) {
        Py_ssize_t room = rows->room ? rows->room * 2 : 256;
        int32_t *l = realloc(rows->low, (size_t)room * sizeof *l);
        if (l)
            rows->low = l;
        int32_t *h = realloc(rows->high, (size_t)room * sizeof *h);
        if (h)
            rows->high = h;
        int32_t *t = realloc(rows->target, (size_t)room * sizeof *t);
        if (t)
            rows->target = t;
        if (!l || !h || !t)
            return 0;
        rows->room = room;
    }
    rows->low[rows->count] = low;
    rows->high[rows->count] = high;
    rows->target[rows->count] = target;
    rows->count++;
    return 1;
}

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
    Rows out = {0, 0, NULL, NULL, NULL};
    size_t map_size = 1;
    while (map_size < (size_t)max_states * 2)
        map_size <<= 1;
    PairMap map = {malloc(map_size * sizeof(int64_t)), malloc(map_size * sizeof(int32_t)), map_size - 1};
    int32_t *pair_a = malloc((size_t)max_states * sizeof(int32_t)), *pair_b = malloc((size_t)max_states * sizeof(int32_t));
    Py_ssize_t *starts = malloc(((size_t)max_states + 1) * sizeof(Py_ssize_t));
    int32_t *alive_stack = NULL, *numbers = NULL, *order = NULL;
    Py_ssize_t *reverse_starts = NULL;
    int32_t *reverse = NULL;
    unsigned char *alive = NULL;
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
        starts[state] = out.count;
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
                if (!rows_push(&out, low, high, *number)) {
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
    Py_END_ALLOW_THREADS
    if (too_big == -2) {
        PyErr_NoMemory();
        goto done;
    }
    if (too_big == 1) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    if (too_big == -1)
        n = 0;
    starts[n] = out.count;
    /* Pruned: the states that can reach an accepting one (reverse edges), then those reachable from 0
     * through them, numbered in the order a breadth-first walk over each row meets them. */
    alive = calloc((size_t)n + 1, 1);
    alive_stack = malloc(((size_t)n + 1) * sizeof(int32_t));
    numbers = malloc(((size_t)n + 1) * sizeof(int32_t));
    order = malloc(((size_t)n + 1) * sizeof(int32_t));
    reverse_starts = calloc((size_t)n + 2, sizeof(Py_ssize_t));
    reverse = malloc(((size_t)out.count + 1) * sizeof(int32_t));
    if (!alive || !alive_stack || !numbers || !order || !reverse_starts || !reverse) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t e = 0; e < out.count; e++)
        reverse_starts[out.target[e] + 1]++;
    for (int32_t s = 0; s < n; s++)
        reverse_starts[s + 1] += reverse_starts[s];
    for (int32_t s = 0; s < n; s++)
        for (Py_ssize_t e = starts[s]; e < starts[s + 1]; e++)
            reverse[reverse_starts[out.target[e]]++] = s;
    for (int32_t s = n; s > 0; s--) /* each list's start, moved by the fill, back in place */
        reverse_starts[s] = reverse_starts[s - 1];
    reverse_starts[0] = 0;
    int32_t pending = 0;
    for (int32_t s = 0; s < n; s++)
        if (a.accepting[pair_a[s]] && b.accepting[pair_b[s]]) {
            alive[s] = 1;
            alive_stack[pending++] = s;
        }
    while (pending) {
        int32_t s = alive_stack[--pending];
        for (Py_ssize_t e = reverse_starts[s]; e < reverse_starts[s + 1]; e++)
            if (!alive[reverse[e]]) {
                alive[reverse[e]] = 1;
                alive_stack[pending++] = reverse[e];
            }
    }
    PyObject *rows = NULL, *accepting = NULL;
    if (n == 0 || !alive[0]) {
        rows = PyTuple_New(0);
        accepting = PyTuple_New(0);
    } else {
        for (int32_t s = 0; s < n; s++)
            numbers[s] = -1;
        int32_t kept = 1;
        numbers[0] = 0;
        order[0] = 0;
        for (int32_t k = 0; k < kept; k++)
            for (Py_ssize_t e = starts[order[k]]; e < starts[order[k] + 1]; e++)
                if (alive[out.target[e]] && numbers[out.target[e]] < 0) {
                    numbers[out.target[e]] = kept;
                    order[kept++] = out.target[e];
                }
        rows = PyTuple_New(kept);
        Py_ssize_t n_accepting = 0;
        for (int32_t k = 0; k < kept; k++)
            n_accepting += a.accepting[pair_a[order[k]]] && b.accepting[pair_b[order[k]]];
        accepting = PyTuple_New(n_accepting);
        Py_ssize_t at = 0;
        for (int32_t k = 0; rows && accepting && k < kept; k++) {
            int32_t s = order[k];
            Py_ssize_t width = 0;
            for (Py_ssize_t e = starts[s]; e < starts[s + 1]; e++)
                width += alive[out.target[e]];
            PyObject *row = PyTuple_New(width);
            if (!row)
                break;
            PyTuple_SET_ITEM(rows, k, row);
            Py_ssize_t w = 0;
            for (Py_ssize_t e = starts[s]; e < starts[s + 1]; e++) {
                if (!alive[out.target[e]])
                    continue;
                PyObject *edge = Py_BuildValue("(iii)", (int)out.low[e], (int)out.high[e], (int)numbers[out.target[e]]);
                if (!edge)
                    break;
                PyTuple_SET_ITEM(row, w++, edge);
            }
            if (w != width)
                break;
            if (a.accepting[pair_a[s]] && b.accepting[pair_b[s]]) {
                PyObject *number = PyLong_FromLong((long)k);
                if (!number)
                    break;
                PyTuple_SET_ITEM(accepting, at++, number);
            }
        }
    }
    if (rows && accepting && !PyErr_Occurred()) {
        result = PyTuple_Pack(2, rows, accepting);
    }
    Py_XDECREF(rows);
    Py_XDECREF(accepting);
done:
    dfa_free(&a);
    dfa_free(&b);
    free(out.low);
    free(out.high);
    free(out.target);
    free(map.keys);
    free(map.values);
    free(pair_a);
    free(pair_b);
    free(starts);
    free(alive);
    free(alive_stack);
    free(numbers);
    free(order);
    free(reverse_starts);
    free(reverse);
    return result;
}
