/* Subset construction for a pattern's automaton (grammar/json_schema/char_dfa.py's `_determinize`): the
 * Thompson NFA's states reached together become one state of a character DFA. The same states in the same
 * order as the Python it replaces (its whole compile, for a schema of a few long patterns). */
#include "char_automata.h" /* Python.h first */
#include "flat_builder.h" /* Ints, fb_put_int */

#include <stdlib.h>
#include <string.h>

#include "native.h"

/* An edge's start or end: `point` is low (step +1) or high + 1 (step -1). */
typedef struct {
    int32_t point, target, step;
} Event;

enum { SHORT_SORT = 256, RADIX_BITS = 11, RADIX = 1 << RADIX_BITS };

/* Defines `static void NAME(TYPE *items, Py_ssize_t count, TYPE *tmp, int passes)`, sorting by the non-negative
 * int32 KEY(item), below 2^(passes * RADIX_BITS), ascending: up to SHORT_SORT items by quicksort (median of
 * three) and insertion, more by counting passes of RADIX_BITS through `tmp` (as long), which no order of the
 * input slows down (a pattern's alternatives choose the order of its events). glibc's qsort, with a call per
 * comparison, was most of the construction: each DFA state sorts the events of all its members, and each
 * closure its states. */
#define DEFINE_SORT(NAME, TYPE, KEY)                                                                           \
    static void NAME##_short(TYPE *items, Py_ssize_t count)                                                    \
    {                                                                                                          \
        while (count > 16) {                                                                                   \
            int32_t a = KEY(items[0]), b = KEY(items[count / 2]), c = KEY(items[count - 1]);                   \
            int32_t pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);                 \
            Py_ssize_t i = 0, j = count - 1;                                                                   \
            for (;;) {                                                                                         \
                while (KEY(items[i]) < pivot)                                                                  \
                    i++;                                                                                       \
                while (KEY(items[j]) > pivot)                                                                  \
                    j--;                                                                                       \
                if (i >= j)                                                                                    \
                    break;                                                                                     \
                TYPE swap = items[i];                                                                          \
                items[i++] = items[j];                                                                         \
                items[j--] = swap;                                                                             \
            }                                                                                                  \
            /* [0, j] and [j + 1, count), both non-empty: recurse into the shorter, loop on the longer */      \
            if (j + 1 < count - j - 1) {                                                                       \
                NAME##_short(items, j + 1);                                                                    \
                items += j + 1;                                                                                \
                count -= j + 1;                                                                                \
            } else {                                                                                           \
                NAME##_short(items + j + 1, count - j - 1);                                                    \
                count = j + 1;                                                                                 \
            }                                                                                                  \
        }                                                                                                      \
        for (Py_ssize_t i = 1; i < count; i++) {                                                               \
            TYPE moving = items[i];                                                                            \
            Py_ssize_t j = i;                                                                                  \
            for (; j > 0 && KEY(items[j - 1]) > KEY(moving); j--)                                              \
                items[j] = items[j - 1];                                                                       \
            items[j] = moving;                                                                                 \
        }                                                                                                      \
    }                                                                                                          \
                                                                                                               \
    static void NAME(TYPE *items, Py_ssize_t count, TYPE *tmp, int passes)                                     \
    {                                                                                                          \
        if (count <= SHORT_SORT) {                                                                             \
            NAME##_short(items, count);                                                                        \
            return;                                                                                            \
        }                                                                                                      \
        Py_ssize_t counts[RADIX];                                                                              \
        TYPE *from = items, *to = tmp;                                                                         \
        for (int shift = 0; shift < passes * RADIX_BITS; shift += RADIX_BITS) {                                \
            memset(counts, 0, sizeof counts);                                                                  \
            for (Py_ssize_t i = 0; i < count; i++)                                                             \
                counts[(KEY(from[i]) >> shift) & (RADIX - 1)]++;                                               \
            for (Py_ssize_t digit = 0, at = 0; digit < RADIX; digit++) {                                       \
                Py_ssize_t here = counts[digit];                                                               \
                counts[digit] = at;                                                                            \
                at += here;                                                                                    \
            }                                                                                                  \
            for (Py_ssize_t i = 0; i < count; i++)                                                             \
                to[counts[(KEY(from[i]) >> shift) & (RADIX - 1)]++] = from[i];                                 \
            TYPE *swap = from;                                                                                 \
            from = to;                                                                                         \
            to = swap;                                                                                         \
        }                                                                                                      \
        if (from != items)                                                                                     \
            memcpy(items, from, (size_t)count * sizeof *items);                                                \
    }

#define EVENT_POINT(event) ((event).point)
#define STATE_NUMBER(state) (state)
DEFINE_SORT(sort_events, Event, EVENT_POINT)
DEFINE_SORT(sort_states, int32_t, STATE_NUMBER)

/* Counting passes that cover the numbers below `n` (code points and NFA states; int32, so 3 at most). */
static int radix_passes(Py_ssize_t n)
{
    int passes = 1;
    while (passes < 3 && n > (Py_ssize_t)1 << (passes * RADIX_BITS))
        passes++;
    return passes;
}

typedef struct {
    Py_ssize_t n;
    Ints edge_starts, edges; /* (low, high, target) triples per state */
    Ints epsilon_starts, epsilon;
} Nfa;

/* edges: a list per state of (ranges, target), ranges a sequence of (low, high); epsilon: a list per state of
 * targets. 0 with a Python error set when malformed. */
static int nfa_read(PyObject *edges, PyObject *epsilon, Nfa *nfa)
{
    if (!PyList_Check(edges) || !PyList_Check(epsilon) || PyList_GET_SIZE(edges) != PyList_GET_SIZE(epsilon)) {
        PyErr_SetString(PyExc_TypeError, "edges and epsilon must be lists, one item per state");
        return 0;
    }
    nfa->n = PyList_GET_SIZE(edges);
    for (Py_ssize_t s = 0; s < nfa->n; s++) {
        if (fb_put_int(&nfa->edge_starts, (int32_t)(nfa->edges.len / 3)) < 0 ||
            fb_put_int(&nfa->epsilon_starts, (int32_t)nfa->epsilon.len) < 0)
            return PyErr_NoMemory() != NULL;
        PyObject *own = PyList_GET_ITEM(edges, s), *empty = PyList_GET_ITEM(epsilon, s);
        if (!PyList_Check(own) || !PyList_Check(empty)) {
            PyErr_SetString(PyExc_TypeError, "each state's edges and epsilon edges must be lists");
            return 0;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(own); i++) {
            int32_t target;
            PyObject *ranges;
            PyObject *edge = PyList_GET_ITEM(own, i);
            if (!PyArg_ParseTuple(edge, "Oi", &ranges, &target))
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an edge's target is not a state");
                return 0;
            }
            PyObject *fast = PySequence_Fast(ranges, "an edge's ranges must be a sequence");
            if (!fast)
                return 0;
            for (Py_ssize_t r = 0; r < PySequence_Fast_GET_SIZE(fast); r++) {
                int32_t low, high;
                if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, r), "ii", &low, &high)) {
                    Py_DECREF(fast);
                    return 0;
                }
                if (low < 0 || high > MAX_CODE_POINT || low > high) {
                    Py_DECREF(fast);
                    PyErr_SetString(PyExc_ValueError, "a range is not a range of code points");
                    return 0;
                }
                if (fb_put_int(&nfa->edges, low) < 0 || fb_put_int(&nfa->edges, high) < 0 || fb_put_int(&nfa->edges, target) < 0) {
                    Py_DECREF(fast);
                    return PyErr_NoMemory() != NULL;
                }
            }
            Py_DECREF(fast);
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(empty); i++) {
            long target = PyLong_AsLong(PyList_GET_ITEM(empty, i));
            if (target == -1 && PyErr_Occurred())
                return 0;
            if (target < 0 || target >= nfa->n) {
                PyErr_SetString(PyExc_ValueError, "an epsilon edge's target is not a state");
                return 0;
            }
            if (fb_put_int(&nfa->epsilon, (int32_t)target) < 0)
                return PyErr_NoMemory() != NULL;
        }
    }
    if (fb_put_int(&nfa->edge_starts, (int32_t)(nfa->edges.len / 3)) < 0 ||
        fb_put_int(&nfa->epsilon_starts, (int32_t)nfa->epsilon.len) < 0)
        return PyErr_NoMemory() != NULL;
    return 1;
}

/* Sorted sets of NFA states to numbers: the DFA states (numbered in order) and, as a cache, the sets of
 * targets a character leads to (numbered by the DFA state their closure is). */
typedef struct {
    Ints starts, members, values;
    int32_t *table; /* indexes into starts/values by hash, -1 empty */
    size_t mask;
} SetMap;

static uint64_t set_hash(const int32_t *items, Py_ssize_t count)
{
    uint64_t hash = 0x9E3779B97F4A7C15u ^ (uint64_t)count;
    for (Py_ssize_t i = 0; i < count; i++)
        hash = (hash ^ (uint64_t)(uint32_t)items[i]) * 0x100000001B3u;
    return hash ^ (hash >> 31);
}

/* The slot of `items` in the table: where it is, or the empty slot where it would go. */
static size_t setmap_slot(const SetMap *map, const int32_t *items, Py_ssize_t count)
{
    size_t slot = (size_t)set_hash(items, count) & map->mask;
    for (;; slot = (slot + 1) & map->mask) {
        int32_t index = map->table[slot];
        if (index < 0)
            return slot;
        int32_t start = map->starts.data[index], length = map->starts.data[index + 1] - start;
        if (length == count && memcmp(&map->members.data[start], items, (size_t)count * sizeof *items) == 0)
            return slot;
    }
}

/* The value of `items`, or -1. */
static int32_t setmap_get(const SetMap *map, const int32_t *items, Py_ssize_t count)
{
    int32_t index = map->table[setmap_slot(map, items, count)];
    return index < 0 ? -1 : map->values.data[index];
}

/* Adds `items` (not in the map) with `value`; 0 out of memory. */
static int setmap_put(SetMap *map, const int32_t *items, Py_ssize_t count, int32_t value)
{
    if ((size_t)map->values.len * 2 >= map->mask) { /* grow: at most half full */
        size_t size = (map->mask + 1) * 2;
        int32_t *table = malloc(size * sizeof *table);
        if (!table)
            return 0;
        memset(table, 0xff, size * sizeof *table);
        int32_t *old = map->table;
        map->table = table;
        map->mask = size - 1;
        for (int32_t index = 0; index < (int32_t)map->values.len; index++) {
            int32_t start = map->starts.data[index];
            map->table[setmap_slot(map, &map->members.data[start], map->starts.data[index + 1] - start)] = index;
        }
        free(old);
    }
    size_t slot = setmap_slot(map, items, count);
    for (Py_ssize_t i = 0; i < count; i++)
        if (fb_put_int(&map->members, items[i]) < 0)
            return 0;
    if (fb_put_int(&map->starts, (int32_t)map->members.len) < 0 || fb_put_int(&map->values, value) < 0)
        return 0;
    map->table[slot] = (int32_t)map->values.len - 1;
    return 1;
}

static int setmap_init(SetMap *map)
{
    map->mask = 63;
    map->table = malloc(64 * sizeof *map->table);
    if (!map->table)
        return 0;
    memset(map->table, 0xff, 64 * sizeof *map->table);
    return fb_put_int(&map->starts, 0) == 0;
}

static void setmap_free(SetMap *map)
{
    free(map->starts.data);
    free(map->members.data);
    free(map->values.data);
    free(map->table);
}

/* The epsilon closure of the states `from` (any order, repeats allowed) into `out`, sorted (`tmp`: room for
 * every state, and `passes`: radix_passes(nfa->n), for the sort). */
static int closure(const Nfa *nfa, const int32_t *from, Py_ssize_t count, int32_t *stamp, int32_t mark, Ints *stack,
                   Ints *out, int32_t *tmp, int passes)
{
    out->len = stack->len = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (stamp[from[i]] != mark) {
            stamp[from[i]] = mark;
            if (fb_put_int(stack, from[i]) < 0)
                return 0;
        }
    while (stack->len) {
        int32_t state = stack->data[--stack->len];
        if (fb_put_int(out, state) < 0)
            return 0;
        for (int32_t e = nfa->epsilon_starts.data[state]; e < nfa->epsilon_starts.data[state + 1]; e++) {
            int32_t target = nfa->epsilon.data[e];
            if (stamp[target] != mark) {
                stamp[target] = mark;
                if (fb_put_int(stack, target) < 0)
                    return 0;
            }
        }
    }
    sort_states(out->data, out->len, tmp, passes);
    return 1;
}

/* What subset construction leaves for the Python objects: rows of (low, high, target) triples, and which
 * DFA states hold `end`. */
typedef struct {
    Ints row_starts, rows;
    unsigned char *accepting;
    int32_t n;
} Subsets;

enum { SUBSETS_DONE = 0, SUBSETS_TOO_BIG = 1, SUBSETS_NO_MEMORY = -1 };

/* The construction itself, touching no Python object (it runs without the GIL). */
static int subsets(const Nfa *nfa, int32_t start, int32_t end, int32_t max_states, Subsets *out)
{
    SetMap states = {0}, by_targets = {0};
    Ints stack = {0}, found = {0}, targets = {0}, active = {0}; /* active: the targets open now, each once */
    size_t most_events = (size_t)nfa->edges.len / 3 * 2 + 1;
    Event *events = malloc(most_events * 2 * sizeof *events), *events_tmp = events ? events + most_events : NULL;
    int32_t *states_tmp = malloc(((size_t)nfa->n + 1) * sizeof *states_tmp);
    int state_passes = radix_passes(nfa->n), point_passes = radix_passes(MAX_CODE_POINT + 2);
    int32_t *stamp = calloc((size_t)nfa->n, sizeof(int32_t));
    int32_t *open = calloc((size_t)nfa->n, sizeof(int32_t)); /* ranges open per target during a sweep */
    unsigned char *listed = calloc((size_t)nfa->n, 1);       /* in `active` */
    int status = SUBSETS_NO_MEMORY;
    if (!events || !states_tmp || !stamp || !open || !listed || !setmap_init(&states) || !setmap_init(&by_targets))
        goto done;
    int32_t mark = 1;
    if (!closure(nfa, &start, 1, stamp, mark++, &stack, &found, states_tmp, state_passes) ||
        !setmap_put(&states, found.data, found.len, 0))
        goto done;
    status = SUBSETS_DONE;
    for (int32_t state = 0; state < (int32_t)states.values.len && status == SUBSETS_DONE; state++) {
        if (fb_put_int(&out->row_starts, (int32_t)(out->rows.len / 3)) < 0) {
            status = SUBSETS_NO_MEMORY;
            break;
        }
        /* Every edge of every member, cut at each range end: one sweep over the sorted ends. */
        Py_ssize_t n_events = 0;
        for (int32_t m = states.starts.data[state]; m < states.starts.data[state + 1]; m++) {
            int32_t member = states.members.data[m];
            for (int32_t e = nfa->edge_starts.data[member]; e < nfa->edge_starts.data[member + 1]; e++) {
                const int32_t *edge = &nfa->edges.data[3 * e];
                events[n_events++] = (Event){edge[0], edge[2], 1};
                events[n_events++] = (Event){edge[1] + 1, edge[2], -1};
            }
        }
        sort_events(events, n_events, events_tmp, point_passes);
        Py_ssize_t row_first = out->rows.len / 3, previous_targets = -1;
        int32_t previous_count = 0;
        targets.len = 0; /* this row's target sets, one after another */
        for (Py_ssize_t i = 0; i < n_events && status == SUBSETS_DONE;) {
            int32_t low = events[i].point;
            for (; i < n_events && events[i].point == low; i++) {
                int32_t target = events[i].target;
                open[target] += events[i].step;
                if (open[target] > 0 && !listed[target]) {
                    listed[target] = 1;
                    if (fb_put_int(&active, target) < 0)
                        status = SUBSETS_NO_MEMORY;
                }
            }
            Py_ssize_t kept = 0; /* drop the closed ones */
            for (Py_ssize_t a = 0; a < active.len; a++) {
                if (open[active.data[a]] > 0)
                    active.data[kept++] = active.data[a];
                else
                    listed[active.data[a]] = 0;
            }
            active.len = kept;
            if (status != SUBSETS_DONE || i == n_events || !active.len)
                continue;
            int32_t high = events[i].point - 1;
            Py_ssize_t targets_at = targets.len;
            for (Py_ssize_t a = 0; a < active.len; a++)
                if (fb_put_int(&targets, active.data[a]) < 0)
                    status = SUBSETS_NO_MEMORY;
            if (status != SUBSETS_DONE)
                break;
            int32_t *reached = &targets.data[targets_at];
            sort_states(reached, active.len, states_tmp, state_passes);
            /* Adjacent intervals reaching the same targets are one transition. */
            Py_ssize_t last = out->rows.len / 3 - 1;
            if (last >= row_first && out->rows.data[3 * last + 1] == low - 1 && previous_count == active.len &&
                memcmp(&targets.data[previous_targets], reached, (size_t)active.len * sizeof(int32_t)) == 0) {
                out->rows.data[3 * last + 1] = high;
                targets.len = targets_at;
                continue;
            }
            previous_targets = targets_at;
            previous_count = (int32_t)active.len;
            /* The same targets come back in many rows: their state is looked up, not closed again. */
            int32_t number = setmap_get(&by_targets, reached, active.len);
            if (number < 0) {
                if (!closure(nfa, reached, active.len, stamp, mark++, &stack, &found, states_tmp, state_passes)) {
                    status = SUBSETS_NO_MEMORY;
                    break;
                }
                number = setmap_get(&states, found.data, found.len);
                if (number < 0) {
                    if ((int32_t)states.values.len >= max_states) {
                        status = SUBSETS_TOO_BIG;
                        break;
                    }
                    number = (int32_t)states.values.len;
                    if (!setmap_put(&states, found.data, found.len, number)) {
                        status = SUBSETS_NO_MEMORY;
                        break;
                    }
                }
                if (!setmap_put(&by_targets, reached, active.len, number)) {
                    status = SUBSETS_NO_MEMORY;
                    break;
                }
            }
            if (fb_put_int(&out->rows, low) < 0 || fb_put_int(&out->rows, high) < 0 || fb_put_int(&out->rows, number) < 0)
                status = SUBSETS_NO_MEMORY;
        }
        for (Py_ssize_t a = 0; a < active.len; a++)
            open[active.data[a]] = listed[active.data[a]] = 0;
        active.len = 0;
    }
    if (status == SUBSETS_DONE) {
        out->n = (int32_t)states.values.len;
        out->accepting = calloc((size_t)out->n + 1, 1);
        if (!out->accepting || fb_put_int(&out->row_starts, (int32_t)(out->rows.len / 3)) < 0)
            status = SUBSETS_NO_MEMORY;
        for (int32_t s = 0; status == SUBSETS_DONE && s < out->n; s++)
            for (int32_t m = states.starts.data[s]; m < states.starts.data[s + 1]; m++)
                out->accepting[s] |= states.members.data[m] == end;
        if (status == SUBSETS_DONE && !dfa_prune(&out->n, out->row_starts.data, out->rows.data, out->accepting))
            status = SUBSETS_NO_MEMORY;
    }
done:
    setmap_free(&states);
    setmap_free(&by_targets);
    free(stack.data);
    free(found.data);
    free(targets.data);
    free(active.data);
    free(events);
    free(states_tmp);
    free(stamp);
    free(open);
    free(listed);
    return status;
}

/* nfa_determinize(edges, epsilon, start, end, max_states) -> (transitions, accepting) | None */
PyObject *edge_nfa_determinize(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *edges, *epsilon, *result = NULL;
    int32_t start, end, max_states;
    if (!PyArg_ParseTuple(args, "OOiii", &edges, &epsilon, &start, &end, &max_states))
        return NULL;
    Nfa nfa = {0};
    Subsets out = {0};
    if (!nfa_read(edges, epsilon, &nfa))
        goto done;
    if (start < 0 || start >= nfa.n || end < 0 || end >= nfa.n || max_states < 1 || max_states > MAX_STATES_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "start and end must be states and max_states positive");
        goto done;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = subsets(&nfa, start, end, max_states, &out);
    Py_END_ALLOW_THREADS
    if (status == SUBSETS_NO_MEMORY)
        PyErr_NoMemory();
    else if (status == SUBSETS_TOO_BIG)
        result = Py_NewRef(Py_None);
    else
        result = dfa_result(out.n, out.row_starts.data, out.rows.data, out.accepting);
done:
    free(nfa.edge_starts.data);
    free(nfa.edges.data);
    free(nfa.epsilon_starts.data);
    free(nfa.epsilon.data);
    free(out.row_starts.data);
    free(out.rows.data);
    free(out.accepting);
    return result;
}
