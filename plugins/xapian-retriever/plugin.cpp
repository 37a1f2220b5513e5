// The lexical (BM25) retriever as a memosd plugin (memos-plugin(7)): Xapian
// databases, one per cube, behind the plugin ABI. See retriever_plugin.h.
#include "memos/plugin_sdk.h"
#include "plugins/xapian-retriever/retriever_plugin.h"

MEMOS_PLUGIN(memos::lexical::XapianRetriever, "xapian-retriever", "1.0.0", MEMOS_KIND_RETRIEVER)
