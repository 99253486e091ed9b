"""A service written for Nameko, using nameko-sqlalchemy: run unchanged under the alias.

Only ``nameko.*`` imports, as in a Nameko code base. The ``notes`` table is
created by the test (the service, like most, expects its schema to exist).
"""

from typing import Any

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy, rpc
from nameko_sqlalchemy import Database
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

Base: Any = declarative_base()


class Note(Base):  # type: ignore[misc]
    """One row of the ``notes`` table."""

    __tablename__ = "notes"
    id = Column(Integer, primary_key=True)
    text = Column(String(200), nullable=False)


class NotesService:
    """Stores notes in SQL; counts them through the counters service."""

    name = "notes"
    db = Database(Base)
    counters = RpcProxy("counters")
    config = Config()

    @rpc
    def add(self, text: str) -> dict:
        """Insert a note; return its id and how many notes were added so far."""
        with self.db.get_session() as session:
            note = Note(text=text)
            session.add(note)
            session.commit()
            note_id = note.id
        added = self.counters.incr(self.config["COUNTER_PREFIX"] + "notes_added")
        return {"id": note_id, "added": added}

    @rpc
    def texts(self) -> list:
        """Every note's text, oldest first."""
        return [note.text for note in self.db.session.query(Note).order_by(Note.id)]
