"""The data plane: auth → parse → route → forward → settle, for the OpenAI and Anthropic APIs."""
