/* remember: the C API (memos.h, memos.h(3)) — store a memory and search for
 * it, in C.
 *
 *   remember CUBE TEXT QUERY
 *
 * The socket is $MEMOS_SOCKET, else memosd's default (memosd(8)). The cube
 * is created when missing. Build: cc remember.c $(pkg-config --cflags --libs memos)
 */
#include <stdio.h>

#include "memos/memos.h"

/* Prints the error and frees its message. */
static int report(const char* what, memos_error* err) {
  fprintf(stderr, "remember: %s: %s (%s%s)\n", what, err->message ? err->message : "",
          memos_strerror(err->code), err->retryable ? ", retryable" : "");
  memos_free(err->message);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: remember CUBE TEXT QUERY\n");
    return 2;
  }
  memos_error err;
  memos_client* client;
  if (memos_connect(NULL, NULL, &client, &err) != MEMOS_OK) return report("connect", &err);

  /* A cube that exists already is fine; any other error is not. */
  memos_cube* cube;
  int rc = memos_cube_create(client, argv[1], -1, NULL, &cube, &err);
  if (rc == MEMOS_OK)
    memos_free(cube);
  else if (rc == MEMOS_ALREADY_EXISTS)
    memos_free(err.message);
  else
    return report("cube", &err);

  const char* tags[] = {"example"};
  memos_new_item item;
  memos_new_item_init(&item);
  item.text = argv[2];
  item.tags = tags;
  item.n_tags = 1;
  item.wait_searchable = 1; /* answered once searchable: the search below sees it */
  item.allow_duplicate = 1;
  memos_item* added;
  if (memos_add(client, argv[1], &item, &added, &err) != MEMOS_OK) return report("add", &err);
  char id[MEMOS_ID_TEXT_SIZE];
  memos_format_id(added->id, id);
  printf("added %s v%u\n", id, (unsigned)added->version);
  memos_free(added);

  memos_search_options options;
  memos_search_options_init(&options);
  options.k = 3;
  memos_hits* hits;
  if (memos_search(client, argv[1], argv[3], &options, &hits, &err) != MEMOS_OK)
    return report("search", &err);
  for (size_t i = 0; i < hits->count; ++i) {
    memos_format_id(hits->data[i].item.id, id);
    printf("%.3f %s %s\n", hits->data[i].score, id, hits->data[i].item.text.ptr);
  }
  memos_free(hits);
  memos_close(client);
  return 0;
}
