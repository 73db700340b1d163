"""The one error type the CLI turns into a one-line message (bad input, config or checkpoint)."""


class JaxbertError(Exception):
    """A user-facing problem: the message names the thing at fault and the fix."""


def reason(e: BaseException, limit: int = 300) -> str:
    """One line saying why `e` happened, for a message that must stay one line.

    Storage libraries wrap the useful cause (TensorStore's "OUT_OF_RANGE: Error reading ...") in an
    outer error whose text is a dump of internals ("See full TensorStore details: <bound method ..."):
    the outermost error of the chain that reads as a sentence is taken, and source locations are cut.
    """
    chain, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    best = None
    for err in chain:  # the outermost error that reads as a sentence
        text = " ".join(str(err).split())
        if text and "TensorStore details" not in text and "<bound method" not in text:
            best = text
            break
    if best is None:
        first = str(chain[0]).strip().splitlines()[0] if str(chain[0]).strip() else type(chain[0]).__name__
        best = first.split(" See full TensorStore details")[0]
    for cut in (" [source locations=", " [tensorstore_spec=", " [key="):
        best = best.split(cut)[0]
    return best if len(best) <= limit else best[:limit - 3] + "..."
