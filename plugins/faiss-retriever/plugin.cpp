// The faiss-retriever plugin (memos-plugin(7)): dense search over FAISS,
// one collection per cube. Everything but the export is in the static
// library (faiss_retriever.h), which the tests drive directly.
#include "memos/plugin_sdk.h"
#include "plugins/faiss-retriever/faiss_retriever.h"

MEMOS_PLUGIN(memos::faiss_retriever::FaissRetriever, "faiss-retriever", "1.0.0",
             MEMOS_KIND_RETRIEVER)
