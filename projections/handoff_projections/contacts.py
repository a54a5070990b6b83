"""Contact fields and tags: the snapshot on `conversation.opened`, then `contact.updated`."""

from collections.abc import Iterator

from handoff.core.envelope import Envelope
from handoff.core.inputs import ContactUpdated, ConversationOpened
from handoff.core.view import Contact, WorkspaceView

HANDLES = frozenset({"contact.updated", "conversation.opened"})
TABLES = ("contacts",)


def evolve(view: WorkspaceView, event: Envelope) -> Iterator[tuple[str, str]]:
    match event:
        case ConversationOpened(data=d) if d.contact is not None:
            fields = {k: v for k, v in d.contact.fields.items() if v is not None}
            view.contacts[d.contact_id] = Contact(fields=fields, tags=tuple(d.contact.tags))
            yield "contacts", d.contact_id
        case ContactUpdated(data=d):
            old = view.contacts.get(d.contact_id, Contact())
            fields = dict(old.fields)
            for name, value in d.fields.items():
                if value is None:
                    fields.pop(name, None)
                else:
                    fields[name] = value
            tags = tuple(d.tags) if d.tags is not None else old.tags
            view.contacts[d.contact_id] = Contact(fields=fields, tags=tags)
            yield "contacts", d.contact_id
