# Conversations and messages arrive with the chat UI issue.
