-- When the worker began sending a notice that creates a message, while the outcome is unknown:
-- set before the platform call, kept through a failure after which the platform may have done it
-- (a timeout), gone with the row's status once it is sent or dead. A pending row that has it was
-- perhaps delivered already (the answer lost to a crash or a timeout): before sending it again,
-- the worker asks the platform whether the message is there (`Sender.find`).
ALTER TABLE outbox ADD COLUMN sending_at TEXT;
